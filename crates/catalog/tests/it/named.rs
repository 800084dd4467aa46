//! `Txn::record_pack_named`: a pack recorded under a name chosen before (streamed onto a
//! tape under that name first).

use catalog::{Error, NewPack, PackFormat, PackMember, generate_pack_name};

use crate::support::{TestResult, fetched, h, t};

fn one_member(version: catalog::VersionId, size: u64) -> NewPack {
    NewPack {
        format: PackFormat::Cryptpack,
        key_id: "key-1".to_owned(),
        plain_size: size,
        plain_hash: h(900),
        cipher_size: size + 64,
        cipher_hash: h(901),
        members: vec![PackMember {
            version,
            offset: 0,
            length: size,
        }],
    }
}

#[test]
fn a_pack_keeps_the_name_it_was_written_under() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a", "b"])?;
    let size = cat.read().version(vs[0])?.size.unwrap_or(0);
    let name = generate_pack_name()?;
    let info = cat.write(|tx| tx.record_pack_named(&one_member(vs[0], size), &name, t(5)))?;
    assert_eq!(info.name, name);
    assert_eq!(cat.read().pack_by_name(&name)?.map(|p| p.id), Some(info.id));
    assert!(cat.check()?.is_ok());
    Ok(())
}

#[test]
fn bad_or_used_names_are_refused_and_nothing_is_recorded() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a", "b"])?;
    let size_a = cat.read().version(vs[0])?.size.unwrap_or(0);
    let size_b = cat.read().version(vs[1])?.size.unwrap_or(0);
    for bad in [
        "",
        "short",
        "../../etc/passwd",
        &"A".repeat(32),
        &"g".repeat(32),
    ] {
        let r = cat.write(|tx| tx.record_pack_named(&one_member(vs[0], size_a), bad, t(5)));
        assert!(
            matches!(r, Err(Error::InvalidInput { .. })),
            "{bad:?}: {r:?}"
        );
    }
    let name = generate_pack_name()?;
    cat.write(|tx| tx.record_pack_named(&one_member(vs[0], size_a), &name, t(5)))?;
    let again = cat.write(|tx| tx.record_pack_named(&one_member(vs[1], size_b), &name, t(6)));
    assert!(
        matches!(again, Err(Error::AlreadyExists { .. })),
        "{again:?}"
    );
    // The refused pack left nothing: b still waits to be packed.
    let waiting: Vec<_> = cat
        .read()
        .versions_to_pack(10)?
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(waiting, vec![vs[1]]);
    assert!(cat.check()?.is_ok());
    Ok(())
}
