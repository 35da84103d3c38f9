// Package postgres is the PostgreSQL connector: it registers the "postgres" database type, whose Sources run read-only-by-default SQL through a pgx connection pool.
package postgres
