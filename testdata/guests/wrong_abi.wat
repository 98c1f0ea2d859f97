;; Speaks an ABI version this host does not: refused before it runs.
(module
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $status (param i32) (result i32)))
  (import "gather" "response_size" (func $size (param i32) (result i64)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "gather_abi_version_2"))
  (func (export "gather") (result i32) (i32.const 0))
  (@custom "gather.manifest" "{\"name\":\"wrong-abi\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"test guest: wrong-abi\",\"permissions\":[]}")
)
