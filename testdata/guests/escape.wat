;; Tries to write outside the archive root; the host refuses the name (BAD_NAME) and reports it.
(module
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $status (param i32) (result i32)))
  (import "gather" "response_size" (func $size (param i32) (result i64)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; [0, 11) = 11 bytes
  (data (i32.const 0) "../../etc/x")
  ;; [64, 69) = 5 bytes
  (data (i32.const 64) "pwned")
  ;; [128, 153) = 25 bytes
  (data (i32.const 128) "test/escape-status-ok.txt")
  ;; [192, 217) = 25 bytes
  (data (i32.const 192) "the host refused the name")
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32)
    ;; record() must return BAD_NAME (-8); prove we saw it by writing a second, legal record.
    (if (i32.eq (call $record (i32.const 0) (i32.const 11) (i32.const 64) (i32.const 5)) (i32.const -8))
      (then (drop (call $record (i32.const 128) (i32.const 25) (i32.const 192) (i32.const 25)))))
    (i32.const 0))
  (@custom "gather.manifest" "{\"name\":\"escape\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"test guest: escape\",\"permissions\":[]}")
)
