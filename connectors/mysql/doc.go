// Package mysql is the MySQL and MariaDB connector: it registers the "mysql" database type, whose Sources run read-only-by-default SQL through a database/sql pool of go-sql-driver/mysql connections.
package mysql
