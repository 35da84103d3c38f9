// Package sqlconn holds what the SQL connectors share: the connection form, tool specs, parameter decoding, a statement classifier and the hand-written JSON row encoder.
package sqlconn
