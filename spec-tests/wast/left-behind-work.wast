;; A host call returns once its result is delivered (the spec's `on_resolve`
;; in `Store.invoke`), not once the whole store is idle: work the callee
;; leaves behind goes on in later ticks and is not an error. Each component
;; below has an export that resolves and leaves a thread (or a callback)
;; that never stops; the invoke must still return its value, and later
;; directives into the same instance must still run: they get their own
;; fuel, and the tick stays fair (the left-behind work makes progress while
;; a later call waits for it, and does not starve that call).

;; 1. A stackful export returns its value, then its implicit thread calls
;;    `thread.yield` forever.
(component
  (canon thread.yield (core func $yield))
  (canon task.return (result u32) (core func $task.return))
  (core module $M
    (import "" "yield" (func $yield (result i32)))
    (import "" "task.return" (func $task.return (param i32)))
    (global $n (mut i32) (i32.const 0))
    (func (export "start")
      (call $task.return (i32.const 42))
      (loop $forever
        (drop (call $yield))
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (br $forever)))
    ;; Returns 1 once the left-behind loop went round three more times.
    (func (export "wait-progress")
      (local $start i32)
      (local.set $start (global.get $n))
      (block $done
        (loop $again
          (drop (call $yield))
          (br_if $done
            (i32.ge_u (i32.sub (global.get $n) (local.get $start)) (i32.const 3)))
          (br $again)))
      (call $task.return (i32.const 1)))
    (func (export "answer") (result i32) (i32.const 9))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "yield" (func $yield))
    (export "task.return" (func $task.return))
  ))))
  (func (export "start") async (result u32) (canon lift (core func $m "start") async))
  (func (export "wait-progress") async (result u32)
    (canon lift (core func $m "wait-progress") async))
  (func (export "answer") (result u32) (canon lift (core func $m "answer")))
)
(assert_return (invoke "start") (u32.const 42))
(assert_return (invoke "answer") (u32.const 9))
(assert_return (invoke "wait-progress") (u32.const 1))
(assert_return (invoke "wait-progress") (u32.const 1))
(assert_return (invoke "answer") (u32.const 9))

;; 2. An export resolves after starting a chain of explicit threads: each
;;    one (`thread.new-indirect` + `thread.resume-later`) starts the next
;;    and exits, so some thread is always ready.
(component
  (core module $Table (table (export "table") 1 funcref))
  (core instance $table (instantiate $Table))
  (core type $start-ty (func (param i32)))
  (alias core export $table "table" (core table $table))
  (core func $thread.new-indirect (canon thread.new-indirect $start-ty (core table $table)))
  (canon thread.resume-later (core func $thread.resume-later))
  (canon thread.yield (core func $yield))
  (canon task.return (result u32) (core func $task.return))
  (core module $M
    (import "" "table" (table 1 funcref))
    (import "" "thread.new-indirect" (func $thread.new-indirect (param i32 i32) (result i32)))
    (import "" "thread.resume-later" (func $thread.resume-later (param i32)))
    (import "" "yield" (func $yield (result i32)))
    (import "" "task.return" (func $task.return (param i32)))
    (global $n (mut i32) (i32.const 0))
    (func $spawn-next
      (call $thread.resume-later (call $thread.new-indirect (i32.const 0) (i32.const 0))))
    (func $link (param i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (call $spawn-next))
    (elem (i32.const 0) func $link)
    (func (export "start")
      (call $spawn-next)
      (call $task.return (i32.const 7)))
    (func (export "wait-progress")
      (local $start i32)
      (local.set $start (global.get $n))
      (block $done
        (loop $again
          (drop (call $yield))
          (br_if $done
            (i32.ge_u (i32.sub (global.get $n) (local.get $start)) (i32.const 3)))
          (br $again)))
      (call $task.return (i32.const 1)))
    (func (export "answer") (result i32) (i32.const 9))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "table" (table $table))
    (export "thread.new-indirect" (func $thread.new-indirect))
    (export "thread.resume-later" (func $thread.resume-later))
    (export "yield" (func $yield))
    (export "task.return" (func $task.return))
  ))))
  (func (export "start") async (result u32) (canon lift (core func $m "start") async))
  (func (export "wait-progress") async (result u32)
    (canon lift (core func $m "wait-progress") async))
  (func (export "answer") (result u32) (canon lift (core func $m "answer")))
)
(assert_return (invoke "start") (u32.const 7))
(assert_return (invoke "answer") (u32.const 9))
(assert_return (invoke "wait-progress") (u32.const 1))
(assert_return (invoke "wait-progress") (u32.const 1))

;; 3. A callback-lifted export resolves, then its callback keeps returning
;;    YIELD. YIELD gives up the instance's exclusive lock, so a later
;;    callback-lifted call into the instance still starts and finishes.
(component
  (canon task.return (result u32) (core func $task.return))
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (global $n (mut i32) (i32.const 0))
    (global $mark (mut i32) (i32.const 0))
    (func (export "start") (result i32)
      (call $task.return (i32.const 5))
      (i32.const 1 (; YIELD ;)))
    (func (export "start-cb") (param i32 i32 i32) (result i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (i32.const 1 (; YIELD ;)))
    (func (export "wait-progress") (result i32)
      (global.set $mark (global.get $n))
      (i32.const 1 (; YIELD ;)))
    (func (export "wait-progress-cb") (param i32 i32 i32) (result i32)
      (if (result i32)
        (i32.ge_u (i32.sub (global.get $n) (global.get $mark)) (i32.const 3))
        (then
          (call $task.return (i32.const 1))
          (i32.const 0 (; EXIT ;)))
        (else (i32.const 1 (; YIELD ;)))))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "task.return" (func $task.return))
  ))))
  (func (export "start") async (result u32)
    (canon lift (core func $m "start") async (callback (func $m "start-cb"))))
  (func (export "wait-progress") async (result u32)
    (canon lift (core func $m "wait-progress") async (callback (func $m "wait-progress-cb"))))
)
(assert_return (invoke "start") (u32.const 5))
(assert_return (invoke "wait-progress") (u32.const 1))
(assert_return (invoke "wait-progress") (u32.const 1))
