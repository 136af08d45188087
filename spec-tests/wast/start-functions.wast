;; Start functions run as synchronous calls of their own, as top-level
;; resumable calls: they may call imports (the callee runs as a thread of its
;; own), and blocking in them traps.

;; A component start function calls an import; a core start function of a
;; later instance sees its effect through another import.
(component
  (component $Counter
    (core module $M
      (global $n (mut i32) (i32.const 0))
      (func (export "bump") (global.set $n (i32.add (global.get $n) (i32.const 1))))
      (func (export "get") (result i32) (global.get $n)))
    (core instance $m (instantiate $M))
    (func (export "bump") (canon lift (core func $m "bump")))
    (func (export "get") (result u32) (canon lift (core func $m "get"))))
  (instance $c (instantiate $Counter))
  (component $Bumper
    (import "bump" (func $bump))
    (core func $bump' (canon lower (func $bump)))
    (core module $M
      (import "" "bump" (func $bump))
      (func (export "init") (call $bump) (call $bump)))
    (core instance $m (instantiate $M (with "" (instance (export "bump" (func $bump'))))))
    (func $init (canon lift (core func $m "init")))
    (start $init))
  (instance $b (instantiate $Bumper (with "bump" (func $c "bump"))))
  (component $Reader
    (import "get" (func $get (result u32)))
    (core func $get' (canon lower (func $get)))
    (core module $M
      (import "" "get" (func $get (result i32)))
      (global $seen (mut i32) (i32.const 0))
      (func $start (global.set $seen (call $get)))
      (start $start)
      (func (export "seen") (result i32) (global.get $seen)))
    (core instance $m (instantiate $M (with "" (instance (export "get" (func $get'))))))
    (func (export "seen") (result u32) (canon lift (core func $m "seen"))))
  (instance $r (instantiate $Reader (with "get" (func $c "get"))))
  (func (export "seen") (alias export $r "seen"))
  (func (export "get") (alias export $c "get"))
)
(assert_return (invoke "seen") (u32.const 2))
(assert_return (invoke "get") (u32.const 2))

;; A core start function that is an exported function of a module with other
;; exports, one of them named like the export the runtime adds.
(component
  (core module $M
    (global $g (mut i32) (i32.const 0))
    (func $start (global.set $g (i32.const 7)))
    (start $start)
    (func (export "canon-async-spec:start") (result i32) (i32.const 1))
    (func (export "g") (result i32) (global.get $g)))
  (core instance $m (instantiate $M))
  (func (export "g") (result u32) (canon lift (core func $m "g")))
  (func (export "other") (result u32) (canon lift (core func $m "canon-async-spec:start")))
)
(assert_return (invoke "g") (u32.const 7))
(assert_return (invoke "other") (u32.const 1))

;; A component start function that blocks traps.
(assert_trap
  (component
    (core module $Memory (memory (export "mem") 1))
    (core instance $memory (instantiate $Memory))
    (core module $M
      (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
      (import "" "waitable-set.wait" (func $waitable-set.wait (param i32 i32) (result i32)))
      (func (export "init")
        (drop (call $waitable-set.wait (call $waitable-set.new) (i32.const 0)))))
    (canon waitable-set.new (core func $waitable-set.new))
    (canon waitable-set.wait (memory (core memory $memory "mem")) (core func $waitable-set.wait))
    (core instance $m (instantiate $M (with "" (instance
      (export "waitable-set.new" (func $waitable-set.new))
      (export "waitable-set.wait" (func $waitable-set.wait))
    ))))
    (func $init (canon lift (core func $m "init")))
    (start $init)
  )
  "cannot block a synchronous task before returning"
)

;; A core start function that traps makes the instantiation trap.
(assert_trap
  (component
    (core module $M
      (func $start unreachable)
      (start $start))
    (core instance $m (instantiate $M))
  )
  "unreachable"
)
