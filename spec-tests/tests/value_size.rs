//! Validation rejects a defined value type whose `elem_size(t, 'i64')` is
//! 2^28 bytes or more, with the reference suite's reason.

use canon_async_spec::wast_runner::new_engine;
use canon_async_wasmi::component::parse_component;
use canon_async_wasmi::error::Error;

fn parse(wat: &str) -> Result<(), Error> {
    let buf = wast::parser::ParseBuffer::new(wat).unwrap();
    let mut w: wast::Wat<'_> = wast::parser::parse(&buf).unwrap();
    let bin = w.encode().unwrap();
    parse_component(&bin, &new_engine()).map(|_| ())
}

fn assert_too_big(wat: &str) {
    match parse(wat) {
        Err(Error::Invalid(m)) if m.contains("exceeds maximum byte size") => {}
        Err(e) => panic!("{wat}: wrong error {e}"),
        Ok(()) => panic!("{wat}: accepted"),
    }
}

#[test]
fn value_size_limit() {
    assert!(parse("(component (type (list u8 268435455)))").is_ok());
    assert!(parse("(component (type (list string 16777215)))").is_ok());
    assert!(
        parse("(component (type (variant (case \"a\" (list u8 268435447)) (case \"b\"))))").is_ok()
    );
    assert_too_big("(component (type (list u8 268435456)))");
    // 16-byte strings with 64-bit pointers: 2^24 of them are 2^28 bytes.
    assert_too_big("(component (type (list string 16777216)))");
    // 2^32 bytes: a 32-bit product would wrap to 0.
    assert_too_big("(component (type (list u64 536870912)))");
    // The discriminant and alignment count: 8 + (2^28 - 8) bytes.
    assert_too_big("(component (type (variant (case \"a\" (list u64 33554431)) (case \"b\"))))");
    // A named type used inside another.
    assert_too_big(
        "(component (type $a (list u8 134217728)) (type (record (field \"x\" $a) (field \"y\" $a))))",
    );
}
