;; A synchronous function whose result flattens to 17 core values spills
;; its results through memory: the callee returns a pointer into its own
;; memory, and a lowering caller passes an out-pointer.

;; Host caller: the runtime reads the 17 values at the returned pointer.
(component
  (core module $M
    (memory (export "mem") 1)
    (func (export "seventeen") (result i32)
      (local $i i32)
      (loop $fill
        (i32.store (i32.mul (local.get $i) (i32.const 4))
                   (i32.add (local.get $i) (i32.const 100)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $fill (i32.lt_u (local.get $i) (i32.const 17))))
      (i32.const 0))
  )
  (core instance $m (instantiate $M))
  (type $t17 (tuple u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32))
  (func (export "seventeen") (result $t17)
    (canon lift (core func $m "seventeen") (memory $m "mem")))
)
(assert_return (invoke "seventeen")
  (tuple.const (u32.const 100) (u32.const 101) (u32.const 102) (u32.const 103)
               (u32.const 104) (u32.const 105) (u32.const 106) (u32.const 107)
               (u32.const 108) (u32.const 109) (u32.const 110) (u32.const 111)
               (u32.const 112) (u32.const 113) (u32.const 114) (u32.const 115)
               (u32.const 116)))

;; Guest caller: the lowered import takes an out-pointer; the caller sums
;; what the callee wrote there (100 + ... + 116 = 1836).
(component
  (component $Callee
    (core module $M
      (memory (export "mem") 1)
      (func (export "seventeen") (result i32)
        (local $i i32)
        (loop $fill
          (i32.store (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))
                     (i32.add (local.get $i) (i32.const 100)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $i) (i32.const 17))))
        (i32.const 64))
    )
    (core instance $m (instantiate $M))
    (type $t17 (tuple u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32))
    (func (export "seventeen") (result $t17)
      (canon lift (core func $m "seventeen") (memory $m "mem")))
  )
  (component $Caller
    (type $t17 (tuple u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32 u32))
    (import "seventeen" (func $f (result $t17)))
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core func $f' (canon lower (func $f) (memory $mem "mem")))
    (core module $M
      (import "" "mem" (memory 1))
      (import "" "f" (func $f (param i32)))
      (func (export "sum") (result i32)
        (local $i i32) (local $acc i32)
        (call $f (i32.const 256))
        (loop $add
          (local.set $acc (i32.add (local.get $acc)
            (i32.load (i32.add (i32.const 256) (i32.mul (local.get $i) (i32.const 4))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $add (i32.lt_u (local.get $i) (i32.const 17))))
        (local.get $acc))
    )
    (core instance $m (instantiate $M (with "" (instance
      (export "mem" (memory $mem "mem"))
      (export "f" (func $f'))
    ))))
    (func (export "sum") (result u32) (canon lift (core func $m "sum")))
  )
  (instance $callee (instantiate $Callee))
  (instance $caller (instantiate $Caller (with "seventeen" (func $callee "seventeen"))))
  (func (export "sum") (alias export $caller "sum"))
)
(assert_return (invoke "sum") (u32.const 1836))
