;; The async tests of the reference suite pass no strings. Here a
;; callback-lifted async export returns a string with `task.return`, to the
;; host and to a guest caller that lowers it synchronously (and receives it
;; in its own memory through its realloc). The caller is itself async-typed
;; (a stackful lift), since a sync-typed task may not call an async-typed
;; function synchronously.

(component
  (component $Callee
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "task.return" (func $task.return (param i32 i32)))
      (data (i32.const 100) "h\c3\a9llo")
      (func (export "greet") (result i32)
        (call $task.return (i32.const 100) (i32.const 6))
        (i32.const 0 (; EXIT ;)))
      (func (export "greet-cb") (param i32 i32 i32) (result i32)
        unreachable)
    )
    (canon task.return (result string) (memory $mem "mem") (core func $task.return))
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "task.return" (func $task.return))
    ))))
    (func (export "greet") async (result string)
      (canon lift (core func $m "greet") async (memory $mem "mem")
        (callback (func $m "greet-cb"))))
  )
  (component $Caller
    (import "greet" (func $greet async (result string)))
    (core module $Mem
      (memory (export "mem") 1)
      (global $next (mut i32) (i32.const 4096))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        (local.set $p (global.get $next))
        (global.set $next (i32.add (local.get $p) (local.get 3)))
        (local.get $p))
    )
    (core instance $mem (instantiate $Mem))
    (core func $greet' (canon lower (func $greet) (memory $mem "mem")
      (realloc (func $mem "realloc"))))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "greet" (func $greet (param i32)))
      (import "" "task.return" (func $task.return (param i32)))
      ;; Calls greet synchronously and returns the string's byte length.
      (func (export "len")
        (call $greet (i32.const 8))
        (call $task.return (i32.load (i32.const 12))))
    )
    (canon task.return (result u32) (core func $task.return))
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "greet" (func $greet'))
      (export "task.return" (func $task.return))
    ))))
    (func (export "len") async (result u32) (canon lift (core func $m "len") async))
  )
  (instance $callee (instantiate $Callee))
  (instance $caller (instantiate $Caller (with "greet" (func $callee "greet"))))
  (func (export "greet") (alias export $callee "greet"))
  (func (export "len") (alias export $caller "len"))
)
(assert_return (invoke "greet") (str.const "h\u{e9}llo"))
(assert_return (invoke "len") (u32.const 6))
