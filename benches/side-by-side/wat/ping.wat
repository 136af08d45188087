;; Workload 1, host to guest: a callback-lifted async export whose core
;; function calls task.return at once and returns EXIT. The host calls it
;; repeatedly; one call is one task.
(component
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "ping") (result i32)
      (call $task.return (i32.const 42))
      (i32.const 0 (; EXIT ;)))
    (func (export "ping-cb") (param i32 i32 i32) (result i32)
      unreachable))
  (canon task.return (result u32) (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))))))
  (func (export "ping") async (result u32)
    (canon lift (core func $m "ping") async (callback (core func $m "ping-cb")))))
