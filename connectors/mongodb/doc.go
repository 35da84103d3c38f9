// Package mongodb is the MongoDB connector: it registers the "mongodb"
// database type and runs an agent's queries against a user's MongoDB with
// mongo-driver v2.
//
// # Connection
//
// The form holds one connection_string (mongodb:// or mongodb+srv://), stored
// encrypted whole as it carries the password. It must name the database to
// query in its path (mongodb://user:…@host/shop); the optional database field
// is used only when the path names none. Validation parses the string with
// the driver's connstring parser without any network lookup, and its errors
// never repeat the user information (user name and password). Options that
// would make the service use its own credentials or files are refused:
// authMechanism other than SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN (MONGODB-AWS,
// MONGODB-OIDC and GSSAPI would pick up the worker's cloud or Kerberos
// identity, MONGODB-X509 needs a certificate file), tlsCAFile,
// tlsCertificateKeyFile(Password), and Unix socket hosts.
//
// TLS is on with tls=true (or ssl=true), with mongodb+srv:// unless tls=false,
// and with the form's ssl. It always verifies the server's certificate
// against the system roots plus the form's ssl_ca (connectors.TLSConfig):
// tlsInsecure, tlsAllowInvalidCertificates, tlsAllowInvalidHostnames,
// tlsDisableOCSPEndpointCheck and tlsDisableCertificateRevocationCheck are
// refused, and PLAIN, which sends the password in clear, needs TLS. OCSP
// responders are never contacted (a stapled response is still checked): a
// certificate's responder URL would be fetched around the host policy. An
// untrusted certificate fails Open at once with KindAuth.
//
// Every connection (pooled or monitoring) is dialled through Options.Dial,
// so the host policy applies to the address actually used, also after an
// SRV lookup. A refused address fails Open at once with KindPolicy instead of
// waiting for server selection to time out. An unreachable server fails
// after Options.ConnectTimeout (the server selection timeout) with
// KindUnavailable; refused credentials are KindAuth.
//
// A connection string may list at most MaxHosts (16) hosts, and a
// mongodb+srv:// string's SRV record may resolve to at most as many
// (KindInput otherwise). One Source dials at most MaxServers (50, MongoDB's
// largest replica set) distinct addresses, however many members a server's
// hello reply lists.
//
// # Hostile servers
//
// The driver allocates a reply's declared length before reading it, bounded
// only by the maxMessageSizeBytes the server itself announced, and allocates
// an OP_COMPRESSED message's declared uncompressed size before
// decompressing. Plaintext connections are therefore wrapped below the
// driver in a guard that fails the read (KindUnavailable, "MongoDB sent a
// malformed reply") when a message declares a length below 16 or above
// 48,000,000 bytes (MongoDB's maximum), or more than that uncompressed. The
// driver checks BSON document lengths against the message, so they cannot
// cause large allocations. TLS connections are not guarded: the driver runs
// TLS on top of the dialled connection, so the guard would see ciphertext.
//
// # DB_QUERY
//
// The params name an operation on one collection:
//
//	{"collection": "users", "filter": {...}, "projection": {...}, "sort": {...}, "limit": 10, "skip": 0}   find (the default)
//	{"collection": "users", "pipeline": [{"$match": {...}}, {"$group": {...}}]}                            aggregate (inferred from pipeline)
//	{"collection": "users", "operation": "count", "filter": {...}}                                         count → {"count": n}
//
// With writes allowed, "insert" (documents), "update" (filter, update, multi,
// upsert) and "delete" (filter, multi) are accepted too; delete needs a
// non-empty filter.
//
// A read-only connection runs only find, aggregate and count, and refuses,
// before anything is sent, a filter, projection, sort or pipeline that holds
// at any depth (also inside $facet, $lookup or $unionWith pipelines, $and,
// $elemMatch …) a key $out or $merge (stages that write) or $where,
// $function or $accumulator (server-side JavaScript). Keys are compared after
// JSON unescaping and case-insensitively ("$OUT" is refused too, although
// MongoDB would only call it unknown). FuzzMongoReadOnly and a property test
// over rewritten attacks check this.
//
// Filters, projections, sorts, pipelines and documents are MongoDB Extended
// JSON (relaxed or canonical): {"$oid": "…"}, {"$date": "2024-01-02T03:04:05Z"},
// {"$numberDecimal": "1.10"}, {"$numberLong": "…"}, {"$binary": {…}}. A value
// may also be given as a JSON string holding the Extended JSON.
//
// # Results
//
// find and aggregate return an array of documents (a row array) in relaxed
// Extended JSON, the friendlier form: numbers as plain JSON numbers, ObjectId
// as {"$oid": …}, dates as {"$date": "<ISO-8601>"}, Decimal128 as
// {"$numberDecimal": "…"} (exact), binary as {"$binary": {"base64", "subType"}}.
// Relaxed Extended JSON would write an int64 beyond ±2^53 as a plain number,
// which JavaScript and other float64 readers round, so such values are written
// in the canonical {"$numberLong": "…"} form instead; everything else is
// relaxed. Anything in the output can be pasted back into a filter, so an
// _id from one result finds its document in the next call.
//
// At most Limits.MaxRows documents are returned: find's limit becomes
// min(limit, MaxRows+1) and aggregate gets a final {"$limit": MaxRows+1}
// stage; an extra document sets Result.Truncated. The encoded array is also
// capped at connectors.MaxResultBytes (4 MiB): it is cut before the first
// document that would pass the cap, so it stays valid JSON, Truncated is set
// and the server cursor is killed. A single document larger than the cap
// (MongoDB allows 16 MiB) yields an empty, truncated array: use a
// projection to fetch part of it.
//
// # Timeouts and pool
//
// Each call runs under a context deadline of min(Limits.Timeout,
// Options.StatementTimeout); the driver derives maxTimeMS from it, so the
// server stops the work too. Either expiring is KindTimeout. The pool holds
// at most Options.MaxOpen connections and closes idle ones after
// Options.IdleTimeout; OpenConns counts pool connections created minus
// closed, from a pool event monitor.
//
// DB_LIST_COLLECTIONS lists the database's collections and views as rows
// {"name", "type"}, with "estimated_count" (from collection metadata, not a
// scan) for collections when there are at most 100 of them.
package mongodb
