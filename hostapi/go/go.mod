module github.com/gather-agent/hostapi/go

go 1.24
