// Package keyring seals and opens credentials with Fernet keys: the first key
// encrypts, any key decrypts, so keys can be rotated without downtime.
package keyring
