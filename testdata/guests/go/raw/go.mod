module github.com/gather-agent/testdata/guests/go/raw

go 1.24
