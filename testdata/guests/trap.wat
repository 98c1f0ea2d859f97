;; Emits one record, then traps (unreachable). The record it made is kept; the trap is reported.
(module
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $status (param i32) (result i32)))
  (import "gather" "response_size" (func $size (param i32) (result i64)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; [0, 20) = 20 bytes
  (data (i32.const 0) "test/before-trap.txt")
  ;; [64, 87) = 23 bytes
  (data (i32.const 64) "written before the trap")
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32)
    (drop (call $record (i32.const 0) (i32.const 20) (i32.const 64) (i32.const 23)))
    (unreachable))
  (@custom "gather.manifest" "{\"name\":\"trap\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"test guest: trap\",\"permissions\":[]}")
)
