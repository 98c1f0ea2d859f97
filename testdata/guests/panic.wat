;; Reports a panic message (log level 4, as the Rust SDK's panic hook does), then aborts.
(module
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; [0, 47) = 47 bytes
  (data (i32.const 0) "panicked at src/lib.rs:7:5: index out of bounds")
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32)
    (drop (call $log (i32.const 4) (i32.const 0) (i32.const 47)))
    (unreachable))
  (@custom "gather.manifest" "{\"name\":\"panic\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"test guest: panic\",\"permissions\":[]}")
)
