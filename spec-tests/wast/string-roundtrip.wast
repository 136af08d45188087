;; Strings crossing component boundaries: a UTF-8 component hands a string
;; to a UTF-16 component, which hands it back; the host sees the original.
;; Both reallocs are bump allocators that copy on a move, so the transcoder's
;; grow-then-shrink reallocations (UTF-16 to UTF-8 with non-ASCII text) are
;; exercised.

(component
  ;; Echo in UTF-16: returns its argument unchanged (pointer and length).
  (component $Echo16
    (core module $M
      (memory (export "mem") 1)
      (global $next (mut i32) (i32.const 1024))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        (local.set $p (i32.and
          (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
          (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
        (global.set $next (i32.add (local.get $p) (local.get 3)))
        ;; A moving realloc must keep the old contents.
        (memory.copy (local.get $p) (local.get 0)
          (select (local.get 1) (local.get 3) (i32.lt_u (local.get 1) (local.get 3))))
        (local.get $p))
      (func (export "echo") (param i32 i32) (result i32)
        (i32.store (i32.const 0) (local.get 0))
        (i32.store (i32.const 4) (local.get 1))
        (i32.const 0))
    )
    (core instance $m (instantiate $M))
    (func (export "echo") (param "s" string) (result string)
      (canon lift (core func $m "echo") (memory $m "mem")
        (realloc (func $m "realloc")) string-encoding=utf16))
  )
  ;; Relay in UTF-8: forwards the host's string through the echo.
  (component $Relay8
    (import "echo" (func $echo (param "s" string) (result string)))
    (core module $Mem
      (memory (export "mem") 1)
      (global $next (mut i32) (i32.const 1024))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        (local.set $p (i32.and
          (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
          (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
        (global.set $next (i32.add (local.get $p) (local.get 3)))
        ;; A moving realloc must keep the old contents.
        (memory.copy (local.get $p) (local.get 0)
          (select (local.get 1) (local.get 3) (i32.lt_u (local.get 1) (local.get 3))))
        (local.get $p))
    )
    (core instance $mem (instantiate $Mem))
    (core func $echo' (canon lower (func $echo) (memory $mem "mem")
      (realloc (func $mem "realloc")) string-encoding=utf8))
    (core module $M
      (import "" "echo" (func $echo (param i32 i32 i32)))
      (func (export "relay") (param i32 i32) (result i32)
        (call $echo (local.get 0) (local.get 1) (i32.const 16))
        (i32.const 16))
    )
    (core instance $m (instantiate $M (with "" (instance (export "echo" (func $echo'))))))
    (func (export "relay") (param "s" string) (result string)
      (canon lift (core func $m "relay") (memory $mem "mem")
        (realloc (func $mem "realloc")) string-encoding=utf8))
  )
  (instance $echo (instantiate $Echo16))
  (instance $relay (instantiate $Relay8 (with "echo" (func $echo "echo"))))
  (func (export "relay") (alias export $relay "relay"))
)
(assert_return (invoke "relay" (str.const "")) (str.const ""))
(assert_return (invoke "relay" (str.const "plain ascii")) (str.const "plain ascii"))
(assert_return (invoke "relay" (str.const "caf\u{e9} \u{1f600} \u{4e2d}"))
  (str.const "caf\u{e9} \u{1f600} \u{4e2d}"))
