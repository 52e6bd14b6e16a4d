module github.com/stofuse/stofuse

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/pierrec/lz4/v4 v4.1.33
	golang.org/x/sys v0.50.0
)
