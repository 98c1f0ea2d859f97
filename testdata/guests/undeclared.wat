;; Declares nodes but requests pods: denied with 403 and a warning in its report.
(module
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $status (param i32) (result i32)))
  (import "gather" "response_size" (func $size (param i32) (result i64)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; [0, 3) = 3 bytes
  (data (i32.const 0) "GET")
  ;; [16, 28) = 12 bytes
  (data (i32.const 16) "/api/v1/pods")
  ;; [256, 282) = 26 bytes
  (data (i32.const 256) "test/undeclared-denied.txt")
  ;; [384, 390) = 6 bytes
  (data (i32.const 384) "denied")
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32)
    (local $h i32)
    (local.set $h (call $request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 12)
                                 (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (i32.const 2))))
    ;; A policy denial is an ordinary 403/405 response: record that we saw it.
    (if (i32.ge_u (call $status (local.get $h)) (i32.const 400))
      (then (drop (call $record (i32.const 256) (i32.const 26) (i32.const 384) (i32.const 6)))))
    (drop (call $close (local.get $h)))
    (i32.const 0))
  (@custom "gather.manifest" "{\"name\":\"undeclared\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"test guest: undeclared\",\"permissions\":[\"GET /api/v1/nodes\"]}")
)
