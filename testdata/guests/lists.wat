;; The paged-list functions from a guest with no SDK: pointer and argument checks first, then
;; a real list. `gather` returns 0 when every check passed, else the number of the first check
;; that failed (the test asserts on it and on the records).
(module
  (import "gather" "list_open" (func $open (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_next" (func $next (param i32) (result i32)))
  (import "gather" "list_emit" (func $emit (param i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $status (param i32) (result i32)))
  (import "gather" "response_size" (func $size (param i32) (result i64)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/api/v1/nodes")                 ;; [0, 13)
  (data (i32.const 32) "/metadata/name")               ;; [32, 46)
  (data (i32.const 64) "config/node/{name}.json")      ;; [64, 87)
  (data (i32.const 96) "config/{uid}.json")            ;; [96, 113)
  (data (i32.const 128) "config/../{name}")            ;; [128, 144)
  (data (i32.const 160) "/api/v1/nodes?limit=5")       ;; [160, 181)
  (data (i32.const 192) "metadata/name")               ;; [192, 205)
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32) (local $h i32) (local $n i32)
    ;; 1-2: a path or fields range outside memory is BAD_POINTER (-1).
    (if (i32.ne (call $open (i32.const 65530) (i32.const 13) (i32.const 32) (i32.const 14) (i32.const 1)) (i32.const -1)) (then (return (i32.const 1))))
    (if (i32.ne (call $open (i32.const 0) (i32.const 13) (i32.const 32) (i32.const -1) (i32.const 1)) (i32.const -1)) (then (return (i32.const 2))))
    ;; 3-5: unknown flags, a path that sets limit itself, a field that is not a pointer: BAD_ARGUMENT (-2).
    (if (i32.ne (call $open (i32.const 0) (i32.const 13) (i32.const 32) (i32.const 14) (i32.const 6)) (i32.const -2)) (then (return (i32.const 3))))
    (if (i32.ne (call $open (i32.const 160) (i32.const 21) (i32.const 32) (i32.const 14) (i32.const 1)) (i32.const -2)) (then (return (i32.const 4))))
    (if (i32.ne (call $open (i32.const 0) (i32.const 13) (i32.const 192) (i32.const 13) (i32.const 1)) (i32.const -2)) (then (return (i32.const 5))))
    ;; 6: a real list: a handle whose current page is a 200.
    (local.set $h (call $open (i32.const 0) (i32.const 13) (i32.const 32) (i32.const 14) (i32.const 1)))
    (if (i32.lt_s (local.get $h) (i32.const 1)) (then (return (i32.const 6))))
    (if (i32.ne (call $status (local.get $h)) (i32.const 200)) (then (return (i32.const 6))))
    ;; 7: the projection body is there to read.
    (if (i64.le_s (call $size (local.get $h)) (i64.const 2)) (then (return (i32.const 7))))
    ;; 8-11: list_emit's template: out of bounds (-1), unknown placeholder (-2), a name that
    ;; breaks the record rules (-8), an index past the page (-2).
    (if (i32.ne (call $emit (local.get $h) (i32.const 0) (i32.const 65530) (i32.const 23)) (i32.const -1)) (then (return (i32.const 8))))
    (if (i32.ne (call $emit (local.get $h) (i32.const 0) (i32.const 96) (i32.const 17)) (i32.const -2)) (then (return (i32.const 9))))
    (if (i32.ne (call $emit (local.get $h) (i32.const 0) (i32.const 128) (i32.const 16)) (i32.const -8)) (then (return (i32.const 10))))
    (if (i32.ne (call $emit (local.get $h) (i32.const 100000) (i32.const 64) (i32.const 23)) (i32.const -2)) (then (return (i32.const 11))))
    ;; 12: every item of every page, by template; the count of records is positive.
    (block $done
      (loop $pages
        (local.set $n (call $emit (local.get $h) (i32.const -1) (i32.const 64) (i32.const 23)))
        (if (i32.lt_s (local.get $n) (i32.const 1)) (then (return (i32.const 12))))
        (br_if $done (i32.eqz (call $next (local.get $h))))
        (br $pages)))
    ;; 13-14: a closed list is BAD_HANDLE (-3) for list_next and list_emit alike.
    (drop (call $close (local.get $h)))
    (if (i32.ne (call $next (local.get $h)) (i32.const -3)) (then (return (i32.const 13))))
    (if (i32.ne (call $emit (local.get $h) (i32.const -1) (i32.const 64) (i32.const 23)) (i32.const -3)) (then (return (i32.const 14))))
    (i32.const 0))
  (@custom "gather.manifest" "{\"name\":\"lists\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"test guest: paged lists\",\"permissions\":[\"GET /api/v1/nodes\"]}")
)
