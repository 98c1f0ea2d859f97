module github.com/gather-agent/testdata/guests/go/badwasi

go 1.24
