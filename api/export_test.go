package api

// The unexported checks, for the black-box tests of this package.
var (
	Decode      = decodeBody
	CheckID     = checkID
	RequireUser = requireUser
)
