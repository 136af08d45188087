;; `canon task.return` traps unless its canonical options equal the task's
;; (`LiftOptions.equal` in `canon_task_return`): the same string encoding
;; and the *same* memory instance, or no memory on both sides. Every export
;; here is a stackful async lift returning 42 through `task.return`; only
;; the `memory` options of the lift and of `task.return` differ.

;; Control: both name the same memory, reached through two separate
;; aliases of the same core instance export.
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (alias core export $mem "mem" (core memory $mem1))
  (alias core export $mem "mem" (core memory $mem2))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "run") (call $task.return (i32.const 42)))
  )
  (canon task.return (result u32) (memory $mem2) (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async (memory $mem1)))
)
(assert_return (invoke "run") (u32.const 42))

;; The lift names no memory, `task.return` does.
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "run") (call $task.return (i32.const 42)))
  )
  (canon task.return (result u32) (memory $mem "mem") (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async))
)
(assert_trap (invoke "run") "invalid `task.return` signature and/or options for current task")

;; The lift names a memory, `task.return` none, and the result is a u32
;; whose lift never reads memory: it returns, as componentize-py's output
;; needs (its `-> bool` and `-> u64` exports do this; DIFFERENCES.md,
;; section 7).
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "run") (call $task.return (i32.const 42)))
  )
  (canon task.return (result u32) (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async (memory $mem "mem")))
)
(assert_return (invoke "run") (u32.const 42))

;; ... a string result, whose lift reads the memory, cannot go without
;; one: validation requires the option.
(assert_invalid
  (component
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core module $M
      (import "" "task.return" (func $task.return (param i32 i32)))
      (func (export "run") (call $task.return (i32.const 0) (i32.const 0)))
    )
    (canon task.return (result string) (core func $task.return))
    (core instance $m (instantiate $M (with "" (instance
      (export "task.return" (func $task.return))
    ))))
    (func (export "run") async (result string)
      (canon lift (core func $m "run") async (memory $mem "mem")))
  )
  "canonical option `memory` is required")

;; Both name a memory, of two core instances of the same module.
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem1 (instantiate $Mem))
  (core instance $mem2 (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "run") (call $task.return (i32.const 42)))
  )
  (canon task.return (result u32) (memory $mem2 "mem") (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async (memory $mem1 "mem")))
)
(assert_trap (invoke "run") "invalid `task.return` signature and/or options for current task")

;; The same with a string result, which the memory is needed for: the
;; string would be read from the wrong memory.
(component
  (core module $Mem (memory (export "mem") 1) (data (i32.const 8) "hi"))
  (core instance $mem1 (instantiate $Mem))
  (core instance $mem2 (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return (param i32 i32)))
    (func (export "run") (call $task.return (i32.const 8) (i32.const 2)))
  )
  (canon task.return (result string) (memory $mem2 "mem") (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result string)
    (canon lift (core func $m "run") async (memory $mem1 "mem")))
)
(assert_trap (invoke "run") "invalid `task.return` signature and/or options for current task")

;; Two empty (zero-page) memories, of two instances of the same module.
(component
  (core module $Mem (memory (export "mem") 0))
  (core instance $mem1 (instantiate $Mem))
  (core instance $mem2 (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "run") (call $task.return (i32.const 42)))
  )
  (canon task.return (result u32) (memory $mem2 "mem") (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async (memory $mem1 "mem")))
)
(assert_trap (invoke "run") "invalid `task.return` signature and/or options for current task")

;; Control: one empty memory, named by both.
(component
  (core module $Mem (memory (export "mem") 0))
  (core instance $mem (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "run") (call $task.return (i32.const 42)))
  )
  (canon task.return (result u32) (memory $mem "mem") (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async (memory $mem "mem")))
)
(assert_return (invoke "run") (u32.const 42))

;; Result-less: a `task.return` without a result or options from a lift
;; with a memory returns, as the reference suite expects
;; (spec-tests/DIFFERENCES.md, section 7) ...
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return))
    (func (export "run") (call $task.return))
  )
  (canon task.return (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (canon lift (core func $m "run") async (memory $mem "mem")))
)
(assert_return (invoke "run"))

;; ... but one that names a memory the lift does not traps.
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core module $M
    (import "" "task.return" (func $task.return))
    (func (export "run") (call $task.return))
  )
  (canon task.return (memory $mem "mem") (core func $task.return))
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "run") async (canon lift (core func $m "run") async))
)
(assert_trap (invoke "run") "invalid `task.return` signature and/or options for current task")
