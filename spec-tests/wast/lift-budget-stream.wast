;; The aliased nested list of lift-budget-call.wast, written to a stream
;; between two instances: the reader waits in `stream.read`, the writer's
;; `stream.write` lifts the element from the writer's memory, and must trap
;; once the copy's lift budget (128 MiB by default) is spent, quickly and
;; without growing the process, leaving the rest of the store usable.

(component
  (component $Producer
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "stream.new" (func $stream.new (result i64)))
      (import "" "stream.write" (func $stream.write (param i32 i32 i32) (result i32)))
      (global $ws (mut i32) (i32.const 0))
      (func (export "start") (result i32)
        (local $ret64 i64)
        (local.set $ret64 (call $stream.new))
        (global.set $ws (i32.wrap_i64 (i64.shr_u (local.get $ret64) (i64.const 32))))
        (i32.wrap_i64 (local.get $ret64)))
      (func (export "write")
        (local $n i32)
        ;; 8192 headers (ptr 0, len 8192) fill the page: one, then copies
        ;; doubling the filled part.
        (i32.store offset=4 (i32.const 0) (i32.const 8192))
        (local.set $n (i32.const 8))
        (loop $fill
          (memory.copy (local.get $n) (i32.const 0) (local.get $n))
          (local.set $n (i32.shl (local.get $n) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $n) (i32.const 65536))))
        (drop (call $stream.write (global.get $ws) (i32.const 0) (i32.const 1)))
        unreachable)
    )
    (type $ST (stream (list (list (list (list u8))))))
    (canon stream.new $ST (core func $stream.new))
    (canon stream.write $ST async (memory $mem "mem") (core func $stream.write))
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "stream.new" (func $stream.new))
      (export "stream.write" (func $stream.write))
    ))))
    (func (export "start") async (result $ST) (canon lift (core func $m "start")))
    (func (export "write") async (canon lift (core func $m "write")))
  )
  (component $Consumer
    (import "producer" (instance $producer
      (export "start" (func async (result (stream (list (list (list (list u8))))))))
      (export "write" (func async))
    ))
    (core module $Mem
      (memory (export "mem") 1)
      (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
    )
    (core instance $mem (instantiate $Mem))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "stream.read" (func $stream.read (param i32 i32 i32) (result i32)))
      (import "" "start" (func $start (result i32)))
      (import "" "write" (func $write))
      (func (export "run")
        (local $rs i32)
        (local.set $rs (call $start))
        ;; Nothing written yet: the read waits.
        (if (i32.ne (call $stream.read (local.get $rs) (i32.const 0) (i32.const 1))
                    (i32.const -1 (; BLOCKED ;)))
          (then unreachable))
        (call $write)
        unreachable)
    )
    (type $ST (stream (list (list (list (list u8))))))
    (canon stream.read $ST async (memory $mem "mem") (realloc (func $mem "realloc"))
      (core func $stream.read))
    (canon lower (func $producer "start") (core func $start'))
    (canon lower (func $producer "write") (core func $write'))
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "stream.read" (func $stream.read))
      (export "start" (func $start'))
      (export "write" (func $write'))
    ))))
    (func (export "run") async (canon lift (core func $m "run")))
  )
  (component $Other
    (core module $M (func (export "ok") (result i32) (i32.const 7)))
    (core instance $m (instantiate $M))
    (func (export "ok") (result u32) (canon lift (core func $m "ok")))
  )
  (instance $producer (instantiate $Producer))
  (instance $consumer (instantiate $Consumer (with "producer" (instance $producer))))
  (instance $other (instantiate $Other))
  (func (export "run") (alias export $consumer "run"))
  (func (export "other-ok") (alias export $other "ok"))
)
(assert_trap (invoke "run") "value too large to lift")
(assert_return (invoke "other-ok") (u32.const 7))
