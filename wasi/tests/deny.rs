//! Deny by default: a component reaching for the network or the
//! filesystem through the WASI host gets "access denied" and no
//! preopened directory.

use std::sync::Arc;

use canon_async_wasi::{add_to_linker, Output, WasiCtx};
use canon_async_wasmi::{Component, Engine, Error, Instance, Linker, Store, Val};

const COMPONENT: &str = r#"(component
  (import "wasi:sockets/types@0.3.0" (instance $sockets
    (export "tcp-socket" (type $tcp (sub resource)))
    (type $ec (variant (case "access-denied") (case "not-supported") (case "invalid-argument")
      (case "out-of-memory") (case "timeout") (case "invalid-state") (case "address-not-bindable")
      (case "address-in-use") (case "remote-unreachable") (case "connection-refused")
      (case "connection-broken") (case "connection-reset") (case "connection-aborted")
      (case "datagram-too-large") (case "other" (option string))))
    (export "error-code" (type $ec' (eq $ec)))
    (type $fam (enum "ipv4" "ipv6"))
    (export "ip-address-family" (type $fam' (eq $fam)))
    (export "[static]tcp-socket.create" (func (param "address-family" $fam') (result (result (own $tcp) (error $ec')))))
  ))
  (import "wasi:sockets/ip-name-lookup@0.3.0" (instance $lookup
    (type $v4 (tuple u8 u8 u8 u8))
    (type $v6 (tuple u16 u16 u16 u16 u16 u16 u16 u16))
    (type $ip (variant (case "ipv4" $v4) (case "ipv6" $v6)))
    (export "ip-address" (type $ip' (eq $ip)))
    (type $ec (variant (case "access-denied") (case "invalid-argument") (case "name-unresolvable")
      (case "temporary-resolver-failure") (case "permanent-resolver-failure") (case "other" (option string))))
    (export "error-code" (type $ec' (eq $ec)))
    (export "resolve-addresses" (func async (param "name" string) (result (result (list $ip') (error $ec')))))
  ))
  (import "wasi:filesystem/types@0.2.9" (instance $fs
    (export "descriptor" (type (sub resource)))
  ))
  (alias export $fs "descriptor" (type $descriptor))
  (import "wasi:filesystem/preopens@0.2.9" (instance $preopens
    (alias outer 1 $descriptor (type $d))
    (export "descriptor" (type $d' (eq $d)))
    (export "get-directories" (func (result (list (tuple (own $d') string)))))
  ))
  (alias export $sockets "[static]tcp-socket.create" (func $create))
  (alias export $lookup "resolve-addresses" (func $resolve))
  (alias export $preopens "get-directories" (func $dirs))
  (core module $Mem
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $next))
      (global.set $next (i32.add (global.get $next) (i32.add (local.get 3) (i32.const 8))))
      (local.get $p)))
  (core instance $mem (instantiate $Mem))
  (core func $create' (canon lower (func $create) (memory (core memory $mem "mem")) (realloc (core func $mem "realloc"))))
  (core func $resolve' (canon lower (func $resolve) (memory (core memory $mem "mem")) (realloc (core func $mem "realloc"))))
  (core func $dirs' (canon lower (func $dirs) (memory (core memory $mem "mem")) (realloc (core func $mem "realloc"))))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "create" (func $create (param i32 i32)))
    (import "" "resolve" (func $resolve (param i32 i32 i32)))
    (import "" "dirs" (func $dirs (param i32)))
    (data (i32.const 512) "example.com")
    ;; (discriminant << 8) | error case
    (func $packed (result i32)
      (i32.or (i32.shl (i32.load8_u (i32.const 0)) (i32.const 8)) (i32.load8_u (i32.const 4))))
    (func (export "tcp") (result i32) (call $create (i32.const 0) (i32.const 0)) (call $packed))
    (func (export "lookup") (result i32) (call $resolve (i32.const 512) (i32.const 11) (i32.const 0)) (call $packed))
    (func (export "dirs") (result i32) (call $dirs (i32.const 0)) (i32.load (i32.const 4)))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "create" (func $create'))
    (export "resolve" (func $resolve'))
    (export "dirs" (func $dirs'))
  ))))
  (func (export "tcp") (result u32) (canon lift (core func $m "tcp")))
  (func (export "lookup") async (result u32) (canon lift (core func $m "lookup")))
  (func (export "dirs") (result u32) (canon lift (core func $m "dirs")))
)
"#;

fn instantiate(text: &str) -> Result<(Store, Instance), Error> {
    let engine = Engine::default();
    let buf = wast::parser::ParseBuffer::new(text).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let c = Component::new(&engine, &w.encode().unwrap()).unwrap();
    let ctx = Arc::new(WasiCtx::new(vec!["deny".into()]).stdout(Output::Null));
    let mut l = Linker::new();
    add_to_linker(&mut l, &ctx).unwrap();
    let mut s = Store::new(&engine);
    let i = l.instantiate(&mut s, &c)?;
    Ok((s, i))
}

fn call(name: &str) -> u32 {
    let (mut s, i) = instantiate(COMPONENT).unwrap();
    let f = i.func(name).unwrap();
    match s.call(&f, &[]).unwrap()[..] {
        [Val::U32(n)] => n,
        ref r => panic!("{r:?}"),
    }
}

/// `err` (discriminant 1) with the error case `access-denied` (0).
const ERR_ACCESS_DENIED: u32 = 1 << 8;

#[test]
fn creating_a_tcp_socket_is_denied() {
    assert_eq!(call("tcp"), ERR_ACCESS_DENIED);
}

#[test]
fn name_lookup_is_denied() {
    assert_eq!(call("lookup"), ERR_ACCESS_DENIED);
}

#[test]
fn no_directory_is_preopened() {
    assert_eq!(call("dirs"), 0);
}

#[test]
fn any_patch_version_is_served_and_another_minor_is_unknown() {
    // 0.2.3 and 0.3.7 are served by the 0.2 and 0.3 implementations.
    let other_patches = COMPONENT
        .replace("@0.2.9", "@0.2.3")
        .replace("@0.3.0", "@0.3.7");
    let (mut s, i) = instantiate(&other_patches).unwrap();
    let f = i.func("tcp").unwrap();
    assert_eq!(s.call(&f, &[]).unwrap(), vec![Val::U32(ERR_ACCESS_DENIED)]);
    // 0.4.0 is not 0.3.
    let err = instantiate(&COMPONENT.replace("sockets/types@0.3.0", "sockets/types@0.4.0"))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("link error: missing import `wasi:sockets/types@0.4.0`"),
        "{err}"
    );
}
