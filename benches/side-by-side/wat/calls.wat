;; Workload 2, guest to guest async calls: $Caller.run makes 1000 async
;; (`canon lower ... async`) calls to $Callee.get, a callback-lifted export
;; that calls task.return and returns EXIT in its first core call, so every
;; call comes back RETURNED without a subtask handle. run returns the sum of
;; the results (42 000).
(component
  (component $Callee
    (core module $M
      (import "" "task.return" (func $task.return (param i32)))
      (func (export "get") (result i32)
        (call $task.return (i32.const 42))
        (i32.const 0 (; EXIT ;)))
      (func (export "get-cb") (param i32 i32 i32) (result i32)
        unreachable))
    (canon task.return (result u32) (core func $task.return))
    (core instance $m (instantiate $M (with "" (instance
      (export "task.return" (func $task.return))))))
    (func (export "get") async (result u32)
      (canon lift (core func $m "get") async (callback (core func $m "get-cb")))))

  (component $Caller
    (import "get" (func $get async (result u32)))
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core func $get' (canon lower (func $get) async (memory (core memory $mem "mem"))))
    (canon task.return (result u32) (core func $task.return))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "get" (func $get (param i32) (result i32)))
      (import "" "task.return" (func $task.return (param i32)))
      (func (export "run") (result i32)
        (local $i i32) (local $sum i32)
        (loop $again
          ;; retptr 16; the status must be RETURNED (2) with no handle
          (if (i32.ne (call $get (i32.const 16)) (i32.const 2))
            (then unreachable))
          (local.set $sum (i32.add (local.get $sum) (i32.load (i32.const 16))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
        (call $task.return (local.get $sum))
        (i32.const 0 (; EXIT ;)))
      (func (export "run-cb") (param i32 i32 i32) (result i32)
        unreachable))
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "get" (func $get'))
      (export "task.return" (func $task.return))))))
    (func (export "run") async (result u32)
      (canon lift (core func $m "run") async (callback (core func $m "run-cb")))))

  (instance $callee (instantiate $Callee))
  (instance $caller (instantiate $Caller (with "get" (func $callee "get"))))
  (func (export "run") (alias export $caller "run")))
