//! OpenLDAP's own command-line clients (Debian's ldap-utils, installed by `make deps` and
//! .ci/run) against the AD DS: the tools administrators actually type.

use std::process::Output;

use hybrid_lab_tests::{TestLab, install_crypto};
use tokio::process::Command;

async fn tool(t: &TestLab, name: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(name);
    cmd.args(args)
        .env("LDAPTLS_CACERT", &t.info().adds.ca_cert)
        .env("LDAPTLS_REQCERT", "demand")
        .env("LDAPCONF", "/dev/null")
        .env_remove("LDAPTLS_CERT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: {e} (install Debian's ldap-utils: `make deps`)"));
    if let Some(text) = stdin {
        use tokio::io::AsyncWriteExt;
        child.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().await.unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldapwhoami_over_ldap_starttls_and_ldaps() {
    install_crypto();
    let t = TestLab::start().await;
    let a = t.info().adds.clone();
    let pw = t.password_of("User1");
    for extra in [vec!["-H", a.ldap.as_str()], vec!["-H", a.ldap.as_str(), "-ZZ"], vec!["-H", a.ldaps.as_str()]] {
        let mut args = extra.clone();
        args.extend(["-x", "-D", "TESTLAB\\User1", "-w", pw.as_str()]);
        let o = tool(&t, "ldapwhoami", &args, None).await;
        assert!(o.status.success(), "{extra:?}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "u:TESTLAB\\User1");
    }
    let o = tool(&t, "ldapwhoami", &["-H", &a.ldaps, "-x", "-D", "user1@testlab.example", "-w", "wrong"], None).await;
    assert_eq!(o.status.code(), Some(49));
    assert!(text(&o).contains("AcceptSecurityContext error, data 52e"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldapsearch_pages_like_ad_tools_and_prints_binary_as_base64() {
    install_crypto();
    let t = TestLab::start().await;
    let a = t.info().adds.clone();
    let o = tool(
        &t,
        "ldapsearch",
        &[
            "-H",
            &a.ldap,
            "-x",
            "-D",
            &a.admin_dn,
            "-w",
            &a.admin_password,
            "-b",
            &a.base_dn,
            "-E",
            "pr=2/noprompt",
            "(&(objectCategory=person)(objectClass=user))",
            "sAMAccountName",
            "objectGUID",
        ],
        None,
    )
    .await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // 9 people (Administrator, Guest, krbtgt, User1..5, the connector) in pages of 2: 5 pages
    assert_eq!(out.matches("\nsAMAccountName: ").count(), 9, "{out}");
    assert_eq!(out.matches("pagedresults: cookie=").count(), 5, "{out}");
    assert_eq!(out.matches("objectGUID:: ").count(), 9, "binary GUIDs come base64: {out}");
    assert!(out.contains("sAMAccountName: MSOL_5f2a9c31d7e8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldapmodify_adds_changes_and_is_refused_with_ads_text() {
    install_crypto();
    let t = TestLab::start().await;
    let a = t.info().adds.clone();
    let ldif = "dn: CN=Carol,OU=Lab Users,DC=testlab,DC=example\nchangetype: add\nobjectClass: user\nsAMAccountName: carol\nuserPrincipalName: carol@testlab.example\nunicodePwd:: IgBTAHQAYQByAHQALQBIAGUAcgBlAC0AMQAyACIA\nuserAccountControl: 512\n\ndn: CN=Carol,OU=Lab Users,DC=testlab,DC=example\nchangetype: modify\nreplace: description\ndescription: added with ldapmodify\n-\n";
    let o = tool(&t, "ldapmodify", &["-H", &a.ldaps, "-x", "-D", &a.admin_dn, "-w", &a.admin_password], Some(ldif)).await;
    assert!(o.status.success(), "{}", text(&o));
    // Carol's password ("Start-Here-12", quoted UTF-16LE above) works at once
    let o = tool(&t, "ldapwhoami", &["-H", &a.ldaps, "-x", "-D", "carol@testlab.example", "-w", "Start-Here-12"], None).await;
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "u:TESTLAB\\carol", "{}", text(&o));
    // The same password write in clear is refused, as Windows refuses it
    let reset = "dn: CN=Carol,OU=Lab Users,DC=testlab,DC=example\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: IgBTAHQAYQByAHQALQBIAGUAcgBlAC0AMQAyACIA\n-\n";
    let o = tool(&t, "ldapmodify", &["-H", &a.ldap, "-x", "-D", &a.admin_dn, "-w", &a.admin_password], Some(reset)).await;
    assert_eq!(o.status.code(), Some(53), "{}", text(&o));
    assert!(text(&o).contains("0000001F: SvcErr"), "{}", text(&o));
    // ldapsearch sees the change; ldapcompare agrees
    let o = tool(
        &t,
        "ldapsearch",
        &[
            "-LLL",
            "-H",
            &a.ldap,
            "-ZZ",
            "-x",
            "-D",
            "TESTLAB\\carol",
            "-w",
            "Start-Here-12",
            "-b",
            &a.base_dn,
            "(sAMAccountName=carol)",
            "description",
        ],
        None,
    )
    .await;
    assert!(text(&o).contains("description: added with ldapmodify"), "{}", text(&o));
    let o = tool(
        &t,
        "ldapcompare",
        &[
            "-H",
            &a.ldap,
            "-x",
            "-D",
            &a.admin_dn,
            "-w",
            &a.admin_password,
            "CN=Carol,OU=Lab Users,DC=testlab,DC=example",
            "sAMAccountName:CAROL",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(6), "compareTrue: {}", text(&o));
}
