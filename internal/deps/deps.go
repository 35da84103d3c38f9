// Package deps pins modules the service uses so go.mod keeps them while the
// code that imports them is written. It is removed once all are imported.
package deps

import (
	_ "github.com/FerretDB/FerretDB/ferretdb"
	_ "github.com/fernet/fernet-go"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/go-chi/httprate"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "go.mongodb.org/mongo-driver/v2/mongo"
	_ "go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	_ "sigs.k8s.io/yaml"
)
