// Command raw is a gatherer written against hostapi/ABI.md alone, with no SDK: the bare
// //go:wasmimport and //go:wasmexport directives. It also declares the `record` import
// twice, as Go programs that bind one host function in two places do.
package main

import "unsafe"

//go:wasmimport gather request
func request(m unsafe.Pointer, ml uint32, p unsafe.Pointer, pl uint32, h unsafe.Pointer, hl uint32, b unsafe.Pointer, bl uint32) int32

//go:wasmimport gather response_status
func responseStatus(handle int32) int32

//go:wasmimport gather response_size
func responseSize(handle int32) int64

//go:wasmimport gather response_read
func responseRead(handle int32, buf unsafe.Pointer, n uint32) int32

//go:wasmimport gather response_close
func responseClose(handle int32) int32

//go:wasmimport gather record
func record(name unsafe.Pointer, nl uint32, data unsafe.Pointer, dl uint32) int32

//go:wasmimport gather record
func recordAgain(name unsafe.Pointer, nl uint32, data unsafe.Pointer, dl uint32) int32

//go:wasmimport gather config
func config(buf unsafe.Pointer, n uint32) int32

func ptr(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

//go:wasmexport gather_abi_version_1
func marker() {}

//go:wasmexport gather
func gather() int32 {
	// Any config at all: panic with no SDK, so only the runtime's stderr tells the host.
	if config(nil, 0) > 0 {
		panic("raw boom")
	}
	mp, ml := ptr("GET")
	pp, pl := ptr("/apis/config.openshift.io/v1/clusterversions/version")
	h := request(mp, ml, pp, pl, nil, 0, nil, 0)
	if h < 0 {
		return 2
	}
	defer responseClose(h)
	if responseStatus(h) != 200 {
		return 1
	}
	body := make([]byte, responseSize(h))
	for filled := 0; filled < len(body); {
		n := responseRead(h, unsafe.Pointer(&body[filled]), uint32(len(body)-filled))
		if n <= 0 {
			break
		}
		filled += int(n)
	}
	np, nl := ptr("config/version.json")
	if record(np, nl, unsafe.Pointer(&body[0]), uint32(len(body))) != 0 {
		return 3
	}
	np, nl = ptr("go-raw/done.txt")
	dp, dl := ptr("done")
	if recordAgain(np, nl, dp, dl) != 0 {
		return 4
	}
	return 0
}

func main() {}
