;; A guest can describe a huge value with little memory: here one page of
;; the caller's memory holds 8192 list headers that all point back at the
;; page itself, so each `list<list<list<list<u8>>>>` level passes its length
;; and bounds checks, yet the whole argument has 8192^4 = 2^52 bytes.
;; Lifting it must trap once the lift's budget (128 MiB by default) is
;; spent, quickly and without growing the process, and leave the rest of
;; the store usable.

(component
  (component $Callee
    (core module $M
      (memory (export "mem") 1)
      (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
      (func (export "take") (param i32 i32) unreachable)
    )
    (core instance $m (instantiate $M))
    (type $T (list (list (list (list u8)))))
    (func (export "take") (param "x" $T)
      (canon lift (core func $m "take") (memory $m "mem") (realloc (func $m "realloc"))))
  )
  (component $Caller
    (type $T (list (list (list (list u8)))))
    (import "take" (func $take (param "x" $T)))
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core func $take' (canon lower (func $take) (memory $mem "mem")))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "take" (func $take (param i32 i32)))
      (func (export "run")
        (local $n i32)
        ;; 8192 headers (ptr 0, len 8192) fill the page: one, then copies
        ;; doubling the filled part.
        (i32.store offset=4 (i32.const 0) (i32.const 8192))
        (local.set $n (i32.const 8))
        (loop $fill
          (memory.copy (local.get $n) (i32.const 0) (local.get $n))
          (local.set $n (i32.shl (local.get $n) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $n) (i32.const 65536))))
        (call $take (i32.const 0) (i32.const 8192)))
    )
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "take" (func $take'))
    ))))
    (func (export "run") (canon lift (core func $m "run")))
  )
  (component $Other
    (core module $M (func (export "ok") (result i32) (i32.const 7)))
    (core instance $m (instantiate $M))
    (func (export "ok") (result u32) (canon lift (core func $m "ok")))
  )
  (instance $callee (instantiate $Callee))
  (instance $caller (instantiate $Caller (with "take" (func $callee "take"))))
  (instance $other (instantiate $Other))
  (func (export "run") (alias export $caller "run"))
  (func (export "other-ok") (alias export $other "ok"))
)
(assert_trap (invoke "run") "value too large to lift")
(assert_return (invoke "other-ok") (u32.const 7))
