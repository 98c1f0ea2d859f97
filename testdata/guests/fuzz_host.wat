;; The host-boundary fuzz guest (agent/tests/fuzz.rs): it calls the host functions with
;; whatever a script says, so the fuzzer can send any pointer, length, handle, level, index and
;; flag to every import without writing a module per case.
;;
;; The script is the module's operator config blob (`config`), which the guest copies to
;; SCRIPT (offset 16). Layout, little-endian:
;;
;;   SCRIPT+0   u32  magic "FUZZ" (0x5a5a5546)
;;   SCRIPT+4   u32  n, the number of entries
;;   SCRIPT+8   u32  pages to grow memory by before the first entry (replaced by memory.grow's result)
;;   SCRIPT+12  u32  flags: bit 0 = record a summary at the end
;;   SCRIPT+16  n entries of 56 bytes:
;;                +0  i32 func: 0-14 the imports, in the order of FUNCS in agent/tests/fuzz.rs,
;;                              15 memory.grow(a0), 16 trap if a0 is 0x50415254 ("TRAP"),
;;                              anything else does nothing and stores 0x4e4f50 ("NOP")
;;                +4  i32 a0 .. +32 i32 a7: the arguments, in the import's parameter order; a
;;                    handle argument of 0x5453414c ("LAST") stands for the last handle that
;;                    request or list_open returned, and 0x5453494c ("LIST") for the last one
;;                    list_open returned, so scripts can use handles they cannot know
;;                +40 i64 result: the import's return value, stored after the call
;;                +48 i64 check: result XOR 0x5a5a5a5a5a5a5a5a, stored with it
;;   then the rest of the blob: the "random guest memory" the arguments point into.
;;
;; Entries are read from memory just before they run, so a host write (config,
;; response_header, response_read) that lands on a later entry changes what it does: that is
;; part of the fuzzing, and the test only trusts entries whose arguments it finds unchanged
;; and whose result matches its check (a host write over a result cannot forge both).
;;
;; With flag bit 0 the guest finally records "fuzz/summary": the script's header (its flags
;; replaced by the final memory size in pages) and the n entries with their results, so the
;; test can check each return value against the ABI. It returns 0 when the summary was
;; recorded (or not asked for), 10 - status when `record` refused it, and 3-6 when the script
;; itself could not be read (a harness bug, which the test fails on).
(module
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "config" (func $config (param i32 i32) (result i32)))
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $response_status (param i32) (result i32)))
  (import "gather" "response_size" (func $response_size (param i32) (result i64)))
  (import "gather" "response_header" (func $response_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_read" (func $response_read (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $response_close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (import "gather" "list_open" (func $list_open (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_next" (func $list_next (param i32) (result i32)))
  (import "gather" "list_emit" (func $list_emit (param i32 i32 i32 i32) (result i32)))
  (import "gather" "list_redact" (func $list_redact (param i32 i32 i32) (result i32)))
  (import "gather" "record_redact" (func $record_redact (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "now" (func $now (result i64)))
  (memory (export "memory") 1)
  (global $last (mut i32) (i32.const 0))
  (global $last_list (mut i32) (i32.const 0))
  (func (export "gather_abi_version_1"))

  ;; A handle argument: "LAST" means the last handle opened, "LIST" the last list opened.
  (func $handle (param $v i32) (result i32)
    (if (i32.eq (local.get $v) (i32.const 0x5453414c)) (then (return (global.get $last))))
    (if (i32.eq (local.get $v) (i32.const 0x5453494c)) (then (return (global.get $last_list))))
    (local.get $v))

  ;; The result of request or list_open: a handle (>= 1) becomes the last handle.
  (func $opened (param $r i32) (result i64)
    (if (i32.gt_s (local.get $r) (i32.const 0)) (then (global.set $last (local.get $r))))
    (i64.extend_i32_s (local.get $r)))

  ;; The same for list_open, which also sets the last list.
  (func $opened_list (param $r i32) (result i64)
    (if (i32.gt_s (local.get $r) (i32.const 0)) (then (global.set $last_list (local.get $r))))
    (call $opened (local.get $r)))

  ;; Runs the entry at $e and returns what the call returned.
  (func $op (param $e i32) (result i64)
    (block $nop
    (block $trap
    (block $grow
    (block $now
    (block $record_redact
    (block $list_redact
    (block $list_emit
    (block $list_next
    (block $list_open
    (block $record
    (block $response_close
    (block $response_read
    (block $response_header
    (block $response_size
    (block $response_status
    (block $request
    (block $config
    (block $log
      (br_table $log $config $request $response_status $response_size $response_header
                $response_read $response_close $record $list_open $list_next $list_emit
                $list_redact $record_redact $now $grow $trap $nop
                (i32.load (local.get $e))))
      ;; log(level, ptr, len)
      (return (i64.extend_i32_s (call $log
        (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e)) (i32.load offset=12 (local.get $e))))))
    ;; config(buf, len)
    (return (i64.extend_i32_s (call $config
      (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e))))))
    ;; request(method, method_len, path, path_len, headers, headers_len, body, body_len)
    (return (call $opened (call $request
      (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e))
      (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))
      (i32.load offset=20 (local.get $e)) (i32.load offset=24 (local.get $e))
      (i32.load offset=28 (local.get $e)) (i32.load offset=32 (local.get $e))))))
    ;; response_status(handle)
    (return (i64.extend_i32_s (call $response_status (call $handle (i32.load offset=4 (local.get $e)))))))
    ;; response_size(handle): already an i64
    (return (call $response_size (call $handle (i32.load offset=4 (local.get $e))))))
    ;; response_header(handle, name, name_len, buf, buf_len)
    (return (i64.extend_i32_s (call $response_header
      (call $handle (i32.load offset=4 (local.get $e))) (i32.load offset=8 (local.get $e)) (i32.load offset=12 (local.get $e))
      (i32.load offset=16 (local.get $e)) (i32.load offset=20 (local.get $e))))))
    ;; response_read(handle, buf, len)
    (return (i64.extend_i32_s (call $response_read
      (call $handle (i32.load offset=4 (local.get $e))) (i32.load offset=8 (local.get $e)) (i32.load offset=12 (local.get $e))))))
    ;; response_close(handle)
    (return (i64.extend_i32_s (call $response_close (call $handle (i32.load offset=4 (local.get $e)))))))
    ;; record(name, name_len, data, data_len)
    (return (i64.extend_i32_s (call $record
      (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e))
      (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))))))
    ;; list_open(path, path_len, fields, fields_len, flags)
    (return (call $opened_list (call $list_open
      (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e))
      (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))
      (i32.load offset=20 (local.get $e))))))
    ;; list_next(handle)
    (return (i64.extend_i32_s (call $list_next (call $handle (i32.load offset=4 (local.get $e)))))))
    ;; list_emit(handle, index, template, template_len)
    (return (i64.extend_i32_s (call $list_emit
      (call $handle (i32.load offset=4 (local.get $e))) (i32.load offset=8 (local.get $e))
      (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))))))
    ;; list_redact(handle, spec, spec_len)
    (return (i64.extend_i32_s (call $list_redact
      (call $handle (i32.load offset=4 (local.get $e))) (i32.load offset=8 (local.get $e)) (i32.load offset=12 (local.get $e))))))
    ;; record_redact(name, name_len, data, data_len, spec, spec_len)
    (return (i64.extend_i32_s (call $record_redact
      (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e))
      (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))
      (i32.load offset=20 (local.get $e)) (i32.load offset=24 (local.get $e))))))
    ;; now(): already an i64
    (return (call $now)))
    ;; memory.grow(pages): the old size in pages, or -1 when the host's limiter refuses
    (return (i64.extend_i32_s (memory.grow (i32.load offset=4 (local.get $e))))))
    ;; a deliberate trap, armed only by the "TRAP" magic so a stray write cannot fire it
    (if (i32.eq (i32.load offset=4 (local.get $e)) (i32.const 0x50415254)) (then unreachable))
    (return (i64.const 0)))
  (i64.const 0x4e4f50))

  (func (export "gather") (result i32)
    (local $need i32) (local $n i32) (local $flags i32) (local $i i32) (local $e i32) (local $r i32)
    (local $result i64)
    ;; With a zero-length buffer, config returns the blob's size and writes nothing.
    (local.set $need (call $config (i32.const 16) (i32.const 0)))
    (if (i32.lt_s (local.get $need) (i32.const 16)) (then (return (i32.const 3))))
    (if (i32.gt_u (i32.add (i32.const 16) (local.get $need)) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (i32.const -1)
              (memory.grow (i32.sub (i32.add (i32.shr_u (i32.add (i32.const 16) (local.get $need)) (i32.const 16)) (i32.const 1))
                                    (memory.size))))
          (then (return (i32.const 4))))))
    (if (i32.ne (call $config (i32.const 16) (local.get $need)) (local.get $need)) (then (return (i32.const 5))))
    (if (i32.ne (i32.load (i32.const 16)) (i32.const 0x5a5a5546)) (then (return (i32.const 6))))
    (local.set $n (i32.load (i32.const 20)))
    (if (i32.gt_u (local.get $n) (i32.div_u (i32.sub (local.get $need) (i32.const 16)) (i32.const 56)))
      (then (return (i32.const 6))))
    (local.set $flags (i32.load (i32.const 28)))
    (i32.store (i32.const 24) (memory.grow (i32.load (i32.const 24))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $e (i32.add (i32.const 32) (i32.mul (local.get $i) (i32.const 56))))
        (local.set $result (call $op (local.get $e)))
        (i64.store offset=40 (local.get $e) (local.get $result))
        (i64.store offset=48 (local.get $e) (i64.xor (local.get $result) (i64.const 0x5a5a5a5a5a5a5a5a)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.eqz (i32.and (local.get $flags) (i32.const 1))) (then (return (i32.const 0))))
    ;; The summary's name, written now so no earlier host write can have changed it.
    (i64.store (i32.const 0) (i64.const 0x6d75732f7a7a7566)) ;; "fuzz/sum"
    (i32.store (i32.const 8) (i32.const 0x7972616d))         ;; "mary"
    (i32.store (i32.const 28) (memory.size))
    (local.set $r (call $record (i32.const 0) (i32.const 12)
                                (i32.const 16) (i32.add (i32.const 16) (i32.mul (local.get $n) (i32.const 56)))))
    (if (result i32) (i32.eqz (local.get $r)) (then (i32.const 0)) (else (i32.sub (i32.const 10) (local.get $r)))))

  (@custom "gather.manifest" "{\"name\":\"fuzz-host\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"drives every host function from a fuzz script\",\"permissions\":[\"GET /api/v1/*\",\"GET /api/v1/namespaces/*/*\",\"GET /api/v1/namespaces/*/*/*\",\"GET /apis/*/*/*\",\"GET /api/v1/secrets\",\"POST /api/v1/*\"]}")
)
