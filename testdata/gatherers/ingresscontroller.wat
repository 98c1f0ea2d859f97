;; A gatherer written in WebAssembly text, from hostapi/ABI.md alone (no SDK):
;; it proves the ABI document is enough to write a gatherer in any language.
;; It records the default IngressController as the API serves it (the clusteroperators
;; gatherer writes IO's trimmed form under config/clusteroperator/).
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
  ;; [16, 111) = 95 bytes
  (data (i32.const 16) "/apis/operator.openshift.io/v1/namespaces/openshift-ingress-operator/ingresscontrollers/default")
  ;; [256, 320) = 64 bytes
  (data (i32.const 256) "config/ingresscontroller/openshift-ingress-operator/default.json")
  ;; [512, 553) = 41 bytes
  (data (i32.const 512) "ingresscontroller: unexpected HTTP status")
  (func (export "gather_abi_version_1"))
  ;; Returns 0 on success, 1 when the API answered with a non-200 status, 2 on a host error.
  (func (export "gather") (result i32)
    (local $h i32) (local $size i32) (local $n i32) (local $total i32)
    ;; request(method, path, headers="", body="")
    (local.set $h (call $request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 95)
                                 (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (i32.const 2))))
    (if (i32.ne (call $status (local.get $h)) (i32.const 200))
      (then
        ;; level 3 = error: lands in this gatherer's report in gathers.json
        (drop (call $log (i32.const 3) (i32.const 512) (i32.const 41)))
        (drop (call $close (local.get $h)))
        (return (i32.const 1))))
    ;; The body goes at 64 KiB; grow memory to fit it (the host never allocates for us).
    (local.set $size (i32.wrap_i64 (call $size (local.get $h))))
    (if (i32.gt_u (i32.add (i32.const 65536) (local.get $size)) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))) (i32.const -1))
          (then (drop (call $close (local.get $h))) (return (i32.const 2))))))
    ;; Read the body in pieces until response_read returns 0.
    (block $done
      (loop $more
        (local.set $n (call $read (local.get $h) (i32.add (i32.const 65536) (local.get $total)) (i32.const 4096)))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (br $more)))
    (drop (call $close (local.get $h)))
    (if (i32.lt_s (call $record (i32.const 256) (i32.const 64) (i32.const 65536) (local.get $total)) (i32.const 0))
      (then (return (i32.const 2))))
    (i32.const 0))
  (@custom "gather.manifest" "{\"name\":\"ingresscontroller\",\"version\":\"1.0.0\",\"abi\":1,\"description\":\"Default IngressController, whole (config/ingresscontroller/...)\",\"permissions\":[\"GET /apis/operator.openshift.io/v1/namespaces/openshift-ingress-operator/ingresscontrollers/default\"]}")
)
