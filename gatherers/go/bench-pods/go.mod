module github.com/gather-agent/gatherers/go/bench-pods

go 1.24

require github.com/gather-agent/hostapi/go v0.0.0

replace github.com/gather-agent/hostapi/go => ../../../hostapi/go
