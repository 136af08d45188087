;; Workload 4, 10 000 concurrent tasks each awaiting a subtask.
;; $Top.run makes 10 000 async calls to $Mid.mid before it waits for any.
;; Each mid task makes an async call to $Leaf.leaf, whose first core call
;; returns YIELD (so the leaf is STARTED, not RETURNED), joins that subtask
;; to a waitable set of its own (kept in context slot 0) and returns WAIT.
;; When run's loop ends, 10 000 mid tasks are waiting on 10 000 leaves. The
;; leaves then call task.return, which wakes their mid tasks, which return to
;; run. run returns how many mid calls were still pending when its loop
;; ended (10 000: every one of them was concurrent).
(component
  (component $Leaf
    (canon task.return (core func $task.return))
    (core module $M
      (import "" "task.return" (func $task.return))
      (func (export "leaf") (result i32)
        (i32.const 1 (; YIELD ;)))
      (func (export "leaf-cb") (param i32 i32 i32) (result i32)
        (call $task.return)
        (i32.const 0 (; EXIT ;))))
    (core instance $m (instantiate $M (with "" (instance
      (export "task.return" (func $task.return))))))
    (func (export "leaf") async
      (canon lift (core func $m "leaf") async (callback (core func $m "leaf-cb")))))

  (component $Mid
    (import "leaf" (func $leaf async))
    (core func $leaf' (canon lower (func $leaf) async))
    (canon task.return (core func $task.return))
    (canon waitable-set.new (core func $ws.new))
    (canon waitable-set.drop (core func $ws.drop))
    (canon waitable.join (core func $join))
    (canon subtask.drop (core func $subtask.drop))
    (canon context.get i32 0 (core func $context.get))
    (canon context.set i32 0 (core func $context.set))
    (core module $M
      (import "" "leaf" (func $leaf (result i32)))
      (import "" "task.return" (func $task.return))
      (import "" "ws.new" (func $ws.new (result i32)))
      (import "" "ws.drop" (func $ws.drop (param i32)))
      (import "" "join" (func $join (param i32 i32)))
      (import "" "subtask.drop" (func $subtask.drop (param i32)))
      (import "" "context.get" (func $context.get (result i32)))
      (import "" "context.set" (func $context.set (param i32)))
      (func (export "mid") (result i32)
        (local $r i32) (local $ws i32)
        (local.set $r (call $leaf))
        (if (i32.eq (i32.and (local.get $r) (i32.const 0xf)) (i32.const 2 (; RETURNED ;)))
          (then
            (call $task.return)
            (return (i32.const 0 (; EXIT ;)))))
        (local.set $ws (call $ws.new))
        (call $join (i32.shr_u (local.get $r) (i32.const 4)) (local.get $ws))
        (call $context.set (local.get $ws))
        (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (local.get $ws) (i32.const 4))))
      (func (export "mid-cb") (param $event i32) (param $index i32) (param $payload i32) (result i32)
        (if (i32.ne (local.get $event) (i32.const 1 (; SUBTASK ;)))
          (then unreachable))
        (if (i32.ne (local.get $payload) (i32.const 2 (; RETURNED ;)))
          (then (return (i32.or (i32.const 2 (; WAIT ;))
                                (i32.shl (call $context.get) (i32.const 4))))))
        (call $subtask.drop (local.get $index))
        (call $ws.drop (call $context.get))
        (call $task.return)
        (i32.const 0 (; EXIT ;))))
    (core instance $m (instantiate $M (with "" (instance
      (export "leaf" (func $leaf'))
      (export "task.return" (func $task.return))
      (export "ws.new" (func $ws.new))
      (export "ws.drop" (func $ws.drop))
      (export "join" (func $join))
      (export "subtask.drop" (func $subtask.drop))
      (export "context.get" (func $context.get))
      (export "context.set" (func $context.set))))))
    (func (export "mid") async
      (canon lift (core func $m "mid") async (callback (core func $m "mid-cb")))))

  (component $Top
    (import "mid" (func $mid async))
    (core func $mid' (canon lower (func $mid) async))
    (canon task.return (result u32) (core func $task.return))
    (canon waitable-set.new (core func $ws.new))
    (canon waitable-set.drop (core func $ws.drop))
    (canon waitable.join (core func $join))
    (canon subtask.drop (core func $subtask.drop))
    (core module $M
      (import "" "mid" (func $mid (result i32)))
      (import "" "task.return" (func $task.return (param i32)))
      (import "" "ws.new" (func $ws.new (result i32)))
      (import "" "ws.drop" (func $ws.drop (param i32)))
      (import "" "join" (func $join (param i32 i32)))
      (import "" "subtask.drop" (func $subtask.drop (param i32)))
      (global $ws (mut i32) (i32.const 0))
      (global $pending (mut i32) (i32.const 0))
      (global $left (mut i32) (i32.const 0))
      (func $wait (result i32)
        (if (i32.eqz (global.get $left))
          (then
            (call $ws.drop (global.get $ws))
            (call $task.return (global.get $pending))
            (return (i32.const 0 (; EXIT ;)))))
        (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (global.get $ws) (i32.const 4))))
      (func (export "run") (result i32)
        (local $i i32) (local $r i32)
        (global.set $ws (call $ws.new))
        (global.set $pending (i32.const 0))
        (global.set $left (i32.const 0))
        (loop $again
          (local.set $r (call $mid))
          (if (i32.ne (i32.and (local.get $r) (i32.const 0xf)) (i32.const 2 (; RETURNED ;)))
            (then
              (call $join (i32.shr_u (local.get $r) (i32.const 4)) (global.get $ws))
              (global.set $pending (i32.add (global.get $pending) (i32.const 1)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $i) (i32.const 10000))))
        (global.set $left (global.get $pending))
        (call $wait))
      (func (export "run-cb") (param $event i32) (param $index i32) (param $payload i32) (result i32)
        (if (i32.ne (local.get $event) (i32.const 1 (; SUBTASK ;)))
          (then unreachable))
        (if (i32.eq (local.get $payload) (i32.const 2 (; RETURNED ;)))
          (then
            (call $subtask.drop (local.get $index))
            (global.set $left (i32.sub (global.get $left) (i32.const 1)))))
        (call $wait)))
    (core instance $m (instantiate $M (with "" (instance
      (export "mid" (func $mid'))
      (export "task.return" (func $task.return))
      (export "ws.new" (func $ws.new))
      (export "ws.drop" (func $ws.drop))
      (export "join" (func $join))
      (export "subtask.drop" (func $subtask.drop))))))
    (func (export "run") async (result u32)
      (canon lift (core func $m "run") async (callback (core func $m "run-cb")))))

  (instance $leaf (instantiate $Leaf))
  (instance $mid (instantiate $Mid (with "leaf" (func $leaf "leaf"))))
  (instance $top (instantiate $Top (with "mid" (func $mid "mid"))))
  (func (export "run") (alias export $top "run")))
