//go:build wasip1

package gather

import "unsafe"

//go:wasmimport gather log
func sysLog(level int32, msg unsafe.Pointer, msgLen uint32) int32

//go:wasmimport gather config
func sysConfig(buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport gather request
func sysRequest(m unsafe.Pointer, ml uint32, p unsafe.Pointer, pl uint32, h unsafe.Pointer, hl uint32, b unsafe.Pointer, bl uint32) int32

//go:wasmimport gather response_status
func sysResponseStatus(handle int32) int32

//go:wasmimport gather response_size
func sysResponseSize(handle int32) int64

//go:wasmimport gather response_header
func sysResponseHeader(handle int32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport gather response_read
func sysResponseRead(handle int32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport gather response_close
func sysResponseClose(handle int32) int32

//go:wasmimport gather record
func sysRecord(name unsafe.Pointer, nameLen uint32, data unsafe.Pointer, dataLen uint32) int32

//go:wasmimport gather list_open
func sysListOpen(path unsafe.Pointer, pathLen uint32, fields unsafe.Pointer, fieldsLen uint32, flags int32) int32

//go:wasmimport gather list_next
func sysListNext(handle int32) int32

//go:wasmimport gather list_emit
func sysListEmit(handle, index int32, template unsafe.Pointer, templateLen uint32) int32

//go:wasmimport gather list_redact
func sysListRedact(handle int32, spec unsafe.Pointer, specLen uint32) int32

//go:wasmimport gather record_redact
func sysRecordRedact(name unsafe.Pointer, nameLen uint32, data unsafe.Pointer, dataLen uint32, spec unsafe.Pointer, specLen uint32) int32

//go:wasmimport gather now
func sysNow() int64

// The ABI marker (ABI.md §1): never called.
//
//go:wasmexport gather_abi_version_1
func abiVersion1() {}

// The entry point the host calls once per period (ABI.md §3).
//
//go:wasmexport gather
func gatherEntry() int32 { return run(registered) }

func str(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func buf(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&b[0]), uint32(len(b))
}

// wasmHost calls the `gather` imports. Every buffer passed is live Go memory for the call.
type wasmHost struct{}

func current() Host { return wasmHost{} }

func (wasmHost) Log(level int32, msg string) {
	p, n := str(msg)
	sysLog(level, p, n)
}

// copyOut follows the copy-out rule: retry with the size the host asks for.
func copyOut(call func(p unsafe.Pointer, n uint32) int32, initial int) ([]byte, int32) {
	b := make([]byte, initial)
	for {
		p, n := buf(b)
		got := call(p, n)
		if got < 0 {
			return nil, got
		}
		if int(got) <= len(b) {
			return b[:got], OK
		}
		b = make([]byte, got)
	}
}

func (wasmHost) Config() []byte {
	b, code := copyOut(sysConfig, 4096)
	if code < 0 {
		return nil
	}
	return b
}

func header(handle int32, name string) (string, bool) {
	np, nl := str(name)
	b, code := copyOut(func(p unsafe.Pointer, n uint32) int32 { return sysResponseHeader(handle, np, nl, p, n) }, 256)
	return string(b), code >= 0
}

func (h wasmHost) Request(req *Request) (*Response, int32) {
	mp, ml := str(req.Method)
	pp, pl := str(req.Path)
	hp, hl := str(req.HeadersWire())
	bp, bl := buf(req.Body)
	handle := sysRequest(mp, ml, pp, pl, hp, hl, bp, bl)
	if handle < 0 {
		return nil, handle
	}
	defer sysResponseClose(handle)
	status, body, code := h.ResponseBody(handle)
	if code < 0 {
		return nil, code
	}
	headers := map[string]string{}
	for _, name := range ResponseHeaders {
		if v, ok := header(handle, name); ok {
			headers[name] = v
		}
	}
	return &Response{Status: status, Headers: headers, Body: body}, OK
}

func (wasmHost) ResponseBody(handle int32) (int, []byte, int32) {
	status := sysResponseStatus(handle)
	size := sysResponseSize(handle)
	if status < 0 || size < 0 {
		return 0, nil, BadHandle
	}
	body := make([]byte, size)
	filled := 0
	for filled < len(body) {
		p, n := buf(body[filled:])
		got := sysResponseRead(handle, p, n)
		if got < 0 {
			return 0, nil, got
		}
		if got == 0 {
			break
		}
		filled += int(got)
	}
	return int(status), body[:filled], OK
}

func (wasmHost) ResponseClose(handle int32) int32 { return sysResponseClose(handle) }

func (wasmHost) Record(name string, data []byte) int32 {
	np, nl := str(name)
	dp, dl := buf(data)
	return sysRecord(np, nl, dp, dl)
}

func (wasmHost) ListOpen(path, fields string, flags int32) int32 {
	pp, pl := str(path)
	fp, fl := str(fields)
	return sysListOpen(pp, pl, fp, fl, flags)
}

func (wasmHost) ListNext(handle int32) int32 { return sysListNext(handle) }

func (wasmHost) ListEmit(handle, index int32, template string) int32 {
	tp, tl := str(template)
	return sysListEmit(handle, index, tp, tl)
}

func (wasmHost) ListRedact(handle int32, spec string) int32 {
	sp, sl := str(spec)
	return sysListRedact(handle, sp, sl)
}

func (wasmHost) RecordRedact(name string, data []byte, spec string) int32 {
	np, nl := str(name)
	dp, dl := buf(data)
	sp, sl := str(spec)
	return sysRecordRedact(np, nl, dp, dl, sp, sl)
}

func (wasmHost) Now() int64 { return sysNow() }
