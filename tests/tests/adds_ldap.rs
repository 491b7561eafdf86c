//! The AD DS over real sockets, driven by the `ldap3` crate: bind forms, search, paging,
//! writes, TLS, controls, and what AD answers when any of it goes wrong.

use std::collections::HashSet;

use ad_ds::password::unicode_pwd;
use hybrid_lab_tests::{TestLab, Via, install_crypto};
use ldap3::controls::RawControl;
use ldap3::exop::{WhoAmI, WhoAmIResp};
use ldap3::{Ldap, LdapResult, Mod, Scope, SearchEntry, SearchOptions};

fn data_code(r: &LdapResult) -> &str {
    r.text.split("data ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("")
}

async fn find(l: &mut Ldap, base: &str, filter: &str, attrs: Vec<&str>) -> Vec<SearchEntry> {
    let (rs, _) = l.search(base, Scope::Subtree, filter, attrs).await.unwrap().success().unwrap();
    rs.into_iter().map(SearchEntry::construct).collect()
}

async fn one(l: &mut Ldap, dn: &str, attrs: Vec<&str>) -> SearchEntry {
    let (mut rs, _) = l.search(dn, Scope::Base, "(objectClass=*)", attrs).await.unwrap().success().unwrap();
    SearchEntry::construct(rs.pop().expect("entry"))
}

fn attr(e: &SearchEntry, a: &str) -> Vec<String> {
    e.attrs.get(a).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_bind_accepts_ads_name_forms_and_answers_ads_sub_codes() {
    install_crypto();
    let t = TestLab::start().await;
    let pw = t.password_of("User1");
    let base = t.base();
    for name in [
        format!("CN=User1,OU=Lab Users,{base}"),
        " cn=user1 , ou=lab users,dc=TESTLAB,dc=example".into(),
        "user1@TESTLAB.example".into(),
        "testlab\\user1".into(),
    ] {
        let mut l = t.connect(Via::Ldaps).await;
        let r = l.simple_bind(&name, &pw).await.unwrap();
        assert_eq!((r.rc, r.text.as_str()), (0, ""), "bind as {name}");
        let (exop, _) = l.extended(WhoAmI).await.unwrap().success().unwrap();
        assert_eq!(exop.parse::<WhoAmIResp>().authzid, "u:TESTLAB\\User1");
    }
    // Wrong password, unknown names and forms AD does not accept: 49 / data 52e.
    for (name, password) in [
        ("TESTLAB\\User1", "wrong"),
        ("TESTLAB\\nobody", "x"),
        ("User1", pw.as_str()),
        ("testlab.example\\User1", pw.as_str()),
        ("CN=Users,DC=testlab,DC=example", "x"),
    ] {
        let mut l = t.connect(Via::Plain).await;
        let r = l.simple_bind(name, password).await.unwrap();
        assert_eq!(r.rc, 49, "{name}");
        assert!(r.text.starts_with("80090308: LdapErr: DSID-"), "{}", r.text);
        assert_eq!(data_code(&r), "52e", "{name}: {}", r.text);
    }
    // Disabled with the right password: 533; with a wrong one, still 52e.
    let mut l = t.connect(Via::Plain).await;
    let r = l.simple_bind("TESTLAB\\User3", &t.password_of("User3")).await.unwrap();
    assert_eq!((r.rc, data_code(&r)), (49, "533"));
    let r = l.simple_bind("TESTLAB\\User3", "wrong").await.unwrap();
    assert_eq!((r.rc, data_code(&r)), (49, "52e"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_reads_the_rootdse_and_nothing_else() {
    install_crypto();
    let t = TestLab::start().await;
    let mut l = t.connect(Via::Plain).await;
    let root = one(&mut l, "", vec![]).await;
    assert_eq!(attr(&root, "defaultNamingContext"), vec![t.base()]);
    assert_eq!(attr(&root, "dnsHostName"), vec!["dc1.testlab.example"]);
    assert_eq!(attr(&root, "domainFunctionality"), vec!["7"]);
    assert!(attr(&root, "supportedControl").contains(&"1.2.840.113556.1.4.319".to_string()));
    assert!(attr(&root, "supportedExtension").contains(&"1.3.6.1.4.1.1466.20037".to_string()));
    assert_eq!(attr(&root, "supportedLDAPVersion"), vec!["3", "2"]);
    let only = one(&mut l, "", vec!["namingContexts"]).await;
    assert_eq!(only.attrs.len(), 1);

    let r = l.search(&t.base(), Scope::Base, "(objectClass=*)", vec!["*"]).await.unwrap();
    assert_eq!(r.1.rc, 1);
    assert!(r.1.text.starts_with("000004DC: LdapErr:"), "{}", r.1.text);
    // A DN with an empty password is an unauthenticated bind: it succeeds, as anonymous.
    let r = l.simple_bind("CN=User1,OU=Lab Users,DC=testlab,DC=example", "").await.unwrap();
    assert_eq!(r.rc, 0);
    let r = l.search(&t.base(), Scope::Base, "(objectClass=*)", vec!["*"]).await.unwrap();
    assert_eq!(r.1.rc, 1);
    // the schema the rootDSE names is for bound clients
    let aggregate = attr(&root, "subschemaSubentry").remove(0);
    assert_eq!(aggregate, format!("CN=Aggregate,CN=Schema,CN=Configuration,{}", t.base()));
    let r = l.search(&aggregate, Scope::Base, "(objectClass=*)", vec!["attributeTypes"]).await.unwrap();
    assert_eq!(r.1.rc, 1, "{}", r.1.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subschema_entry_publishes_ads_schema_when_asked_by_name() {
    install_crypto();
    let t = TestLab::start().await;
    let mut l = t.connect(Via::Plain).await;
    l.simple_bind("TESTLAB\\User1", &t.password_of("User1")).await.unwrap().success().unwrap();
    let aggregate = format!("CN=Aggregate,CN=Schema,CN=Configuration,{}", t.base());
    // as on Samba and Windows: neither `*` nor `+` brings the schema itself
    let plain = one(&mut l, &aggregate, vec!["*", "+"]).await;
    assert_eq!(attr(&plain, "objectClass"), vec!["top", "subSchema"]);
    assert!(attr(&plain, "attributeTypes").is_empty() && attr(&plain, "objectClasses").is_empty());
    let e = one(&mut l, &aggregate, vec!["attributeTypes", "objectClasses", "dITContentRules", "modifyTimeStamp"]).await;
    let types = attr(&e, "attributeTypes");
    // AD's whole schema (Microsoft's 2016 files), and Exchange's extensionAttribute1-15 the lab keeps
    assert_eq!(types.len(), ad_ds::ad_schema::attributes().count() + 15);
    assert!(types.iter().any(|t| t.starts_with("( 1.2.840.113556.1.4.363 NAME 'operatingSystem' ")), "AD's, not only the lab's");
    assert!(
        types.contains(
            &"( 1.2.840.113556.1.4.8 NAME 'userAccountControl' SYNTAX '1.3.6.1.4.1.1466.115.121.1.27' SINGLE-VALUE )".to_string()
        )
    );
    let classes = attr(&e, "objectClasses");
    assert!(
        classes.iter().any(|c| c.starts_with("( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL MAY (")),
        "{classes:?}"
    );
    assert!(attr(&e, "dITContentRules").iter().any(|c| c.contains("NAME 'group' AUX ( mailRecipient $ securityPrincipal $ posixGroup )")));
    assert_eq!(attr(&e, "modifyTimeStamp").len(), 1);
    // one level below it there is nothing; a filter that does not match returns nothing
    let r = l.search(&aggregate, Scope::OneLevel, "(objectClass=*)", vec!["cn"]).await.unwrap();
    assert!(r.0.is_empty());
    let r = l.search(&aggregate, Scope::Base, "(objectClass=user)", vec!["cn"]).await.unwrap().success().unwrap();
    assert!(r.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_scopes_filters_and_attribute_selection() {
    install_crypto();
    let t = TestLab::start().await;
    let base = t.base();
    let mut l = t.bind(Via::Plain, "user1@testlab.example", &t.password_of("User1")).await;
    let ou = format!("OU=Lab Users,{base}");
    let count = |scope| {
        let ou = ou.clone();
        let mut l = l.clone();
        async move { l.search(&ou, scope, "(objectClass=*)", vec!["1.1"]).await.unwrap().success().unwrap().0.len() }
    };
    assert_eq!(count(Scope::Base).await, 1);
    assert_eq!(count(Scope::OneLevel).await, 4);
    assert_eq!(count(Scope::Subtree).await, 5);

    let sams = |es: Vec<SearchEntry>| {
        let mut v: Vec<String> = es.iter().flat_map(|e| attr(e, "sAMAccountName")).collect();
        v.sort();
        v
    };
    let q = |f: &'static str| {
        let (mut l, ou) = (l.clone(), ou.clone());
        async move { sams(find(&mut l, &ou, f, vec!["sAMAccountName"]).await) }
    };
    assert_eq!(q("(samaccountname=USER1)").await, ["User1"]);
    assert_eq!(q("(|(sAMAccountName=User1)(sAMAccountName=User4))").await, ["User1", "User4"]);
    assert_eq!(q("(&(objectCategory=person)(objectClass=user)(!(sAMAccountName=User1)))").await, ["User2", "User3", "User4"]);
    assert_eq!(q("(userAccountControl:1.2.840.113556.1.4.803:=2)").await, ["User3"]);
    assert_eq!(q("(userAccountControl>=66000)").await, ["User4"]);
    assert_eq!(q("(userAccountControl<=512)").await, ["User1", "User2"]);
    assert_eq!(q("(displayName=user*)").await, ["User1", "User2", "User3", "User4"]);
    assert_eq!(q("(mail=*2@testlab.example)").await, ["User2"]);
    assert_eq!(q("(displayName~=user3)").await, ["User3"]);
    assert_eq!(q("(memberOf=CN=Domain Admins,CN=Users,DC=testlab,DC=example)").await, ["User2"]);
    // in-chain: Domain Admins is itself a member of Administrators
    assert_eq!(q("(memberOf:1.2.840.113556.1.4.1941:=CN=Administrators,CN=Builtin,DC=testlab,DC=example)").await, ["User2"]);
    assert!(q("(noSuchAttribute=x)").await.is_empty());
    assert!(q("(!(noSuchAttribute=x))").await.is_empty(), "NOT of Undefined stays Undefined");

    // `*`: stored attributes, AD's spelling, binary GUID/SID, never the password.
    let dn = format!("CN=User1,{ou}");
    let e = one(&mut l, &dn, vec!["*"]).await;
    assert_eq!(attr(&e, "sAMAccountName"), ["User1"]);
    assert_eq!(attr(&e, "distinguishedName"), [dn.as_str()]);
    assert_eq!(attr(&e, "objectClass"), ["top", "person", "organizationalPerson", "user"]);
    let guid = e.bin_attrs.get("objectGUID").or(e.attrs.get("objectGUID").map(|_| unreachable!())).expect("objectGUID");
    assert_eq!(guid[0].len(), 16);
    let sid = ad_ds::sid::Sid::from_bytes(&e.bin_attrs["objectSid"][0]).unwrap();
    assert!(sid.to_string().starts_with("S-1-5-21-2817409516-1393307201-3952214780-"), "{sid}");
    assert!(!e.attrs.contains_key("unicodePwd") && !e.bin_attrs.contains_key("unicodePwd"));
    assert!(!e.attrs.contains_key("canonicalName"), "constructed attributes need asking for");
    // `+` and by name: constructed ones; requested in any case, returned in AD's spelling.
    let e = one(&mut l, &dn, vec!["+"]).await;
    assert_eq!(attr(&e, "canonicalName"), ["testlab.example/Lab Users/User1"]);
    assert_eq!(attr(&e, "msDS-User-Account-Control-Computed"), ["0"]);
    let e = one(&mut l, &dn, vec!["SAMACCOUNTNAME", "unicodePwd", "userPassword"]).await;
    assert_eq!(e.attrs.keys().collect::<Vec<_>>(), ["sAMAccountName"]);
    let e = one(&mut l, &dn, vec!["1.1"]).await;
    assert!(e.attrs.is_empty() && e.bin_attrs.is_empty());

    // client size limit: the entries up to it, then sizeLimitExceeded
    let r = l
        .with_search_options(SearchOptions::new().sizelimit(2))
        .search(&ou, Scope::Subtree, "(objectClass=user)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!((r.0.len(), r.1.rc), (2, 4));

    // AD's <GUID=...> and <SID=...> bases
    let g = uuid::Uuid::from_bytes_le(guid[0].as_slice().try_into().unwrap());
    let e = one(&mut l, &format!("<GUID={g}>"), vec!["sAMAccountName"]).await;
    assert_eq!(attr(&e, "sAMAccountName"), ["User1"]);
    let e = one(&mut l, &format!("<SID={sid}>"), vec!["sAMAccountName"]).await;
    assert_eq!(attr(&e, "sAMAccountName"), ["User1"]);
    // a binary value in a filter, escaped as RFC 4515 says (bytes that are not UTF-8 on the
    // wire): how tools and Connect find an object by its GUID
    let escape = |bytes: &[u8]| bytes.iter().map(|b| format!("\\{b:02x}")).collect::<String>();
    let by = |f: String| {
        let (mut l, ou) = (l.clone(), ou.clone());
        async move { sams(find(&mut l, &ou, &f, vec!["sAMAccountName"]).await) }
    };
    assert_eq!(by(format!("(objectGUID={})", escape(&guid[0]))).await, ["User1"]);
    assert_eq!(by(format!("(&(objectClass=user)(objectSid={}))", escape(&sid.to_bytes()))).await, ["User1"]);
    assert!(by(format!("(objectGUID={})", escape(&[0xff; 16]))).await.is_empty());

    // bad bases: AD's codes and best match
    let r = l.search(&format!("CN=Nobody,{ou}"), Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap().1;
    assert_eq!((r.rc, r.matched.as_str()), (32, ou.as_str()));
    assert!(r.text.starts_with("0000208D: NameErr:"), "{}", r.text);
    let r = l.search("CN=a+SN=b,DC=x", Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap().1;
    assert_eq!(r.rc, 34);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_results_walk_large_directories_and_unpaged_searches_stop_at_max_page_size() {
    install_crypto();
    // 1,200 users from an LDIF seed.
    let mut ldif = String::from("dn: OU=Bulk,DC=testlab,DC=example\nobjectClass: organizationalUnit\n\n");
    for i in 0..1200 {
        ldif.push_str(&format!("dn: CN=bulk{i},OU=Bulk,DC=testlab,DC=example\nobjectClass: user\nsAMAccountName: bulk{i}\n\n"));
    }
    let t = TestLab::start_with(|c| c.adds_ldif = Some(("bulk.ldif".into(), ldif))).await;
    let mut l = t.admin(Via::Plain).await;
    let r = l.search("OU=Bulk,DC=testlab,DC=example", Scope::OneLevel, "(objectClass=user)", vec!["1.1"]).await.unwrap();
    assert_eq!((r.0.len(), r.1.rc), (1000, 4), "AD's MaxPageSize");

    use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(250))];
    let mut s = l
        .streaming_search_with(adapters, "OU=Bulk,DC=testlab,DC=example", Scope::OneLevel, "(objectClass=user)", vec!["sAMAccountName"])
        .await
        .unwrap();
    let mut seen = HashSet::new();
    while let Some(e) = s.next().await.unwrap() {
        seen.insert(SearchEntry::construct(e).dn);
    }
    assert_eq!(s.finish().await.rc, 0);
    assert_eq!(seen.len(), 1200);

    // An unknown cookie is refused.
    let bogus = ldap3::controls::PagedResults { size: 10, cookie: b"nope".to_vec() };
    let r =
        l.with_controls(bogus).search("OU=Bulk,DC=testlab,DC=example", Scope::OneLevel, "(objectClass=user)", vec!["1.1"]).await.unwrap();
    assert_eq!(r.1.rc, 53);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_keep_links_stamps_and_names_consistent() {
    install_crypto();
    let t = TestLab::start().await;
    let base = t.base();
    let mut l = t.admin(Via::Ldaps).await;
    let ou = format!("OU=Projects,{base}");
    l.add(&ou, vec![("objectClass", HashSet::from(["organizationalUnit"]))]).await.unwrap().success().unwrap();
    let grp = format!("CN=Writers,{ou}");
    l.add(&grp, vec![("objectClass", HashSet::from(["group"])), ("sAMAccountName", HashSet::from(["Writers"]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    let alice = format!("CN=Alice,{ou}");
    let r = l
        .add(
            &alice,
            vec![
                ("objectClass", HashSet::from(["user"])),
                ("sAMAccountName", HashSet::from(["alice"])),
                ("userPrincipalName", HashSet::from(["alice@testlab.example"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!((r.rc, r.text.as_str()), (0, ""), "Windows answers success with an empty message");

    let e = one(&mut l, &alice, vec!["*"]).await;
    assert_eq!(attr(&e, "userAccountControl"), ["546"], "a user created without a password starts disabled");
    assert_eq!(attr(&e, "pwdLastSet"), ["0"]);
    assert_eq!(attr(&e, "sAMAccountType"), ["805306368"]);
    assert_eq!(attr(&e, "objectCategory"), [format!("CN=Person,CN=Schema,CN=Configuration,{base}")]);
    let usn0: i64 = attr(&e, "uSNChanged")[0].parse().unwrap();
    assert_eq!(attr(&e, "whenCreated"), ["20260105090000.0Z"]);

    // member → memberOf
    l.modify(&grp, vec![Mod::Add("member", HashSet::from([alice.as_str()]))]).await.unwrap().success().unwrap();
    assert_eq!(attr(&one(&mut l, &alice, vec!["memberOf"]).await, "memberOf"), [grp.as_str()]);
    // the clock moves, the stamps follow; uSNChanged only grows
    t.lab.clock.advance(std::time::Duration::from_secs(3600));
    l.modify(&alice, vec![Mod::Replace("description", HashSet::from(["writer"]))]).await.unwrap().success().unwrap();
    let e = one(&mut l, &alice, vec!["uSNChanged", "whenChanged"]).await;
    assert!(attr(&e, "uSNChanged")[0].parse::<i64>().unwrap() > usn0);
    assert_eq!(attr(&e, "whenChanged"), ["20260105100000.0Z"]);

    // rename: the member value follows
    l.modifydn(&alice, "CN=Alice Smith", true, None).await.unwrap().success().unwrap();
    let renamed = format!("CN=Alice Smith,{ou}");
    assert_eq!(attr(&one(&mut l, &grp, vec!["member"]).await, "member"), [renamed.as_str()]);
    let e = one(&mut l, &renamed, vec!["cn", "name", "distinguishedName"]).await;
    assert_eq!(attr(&e, "name"), ["Alice Smith"]);
    // move to another container
    l.modifydn(&renamed, "CN=Alice Smith", true, Some(&format!("CN=Users,{base}"))).await.unwrap().success().unwrap();
    let moved = format!("CN=Alice Smith,CN=Users,{base}");
    assert_eq!(attr(&one(&mut l, &grp, vec!["member"]).await, "member"), [moved.as_str()]);

    // compare
    assert!(l.compare(&moved, "sAMAccountName", "ALICE").await.unwrap().equal().unwrap());
    assert!(!l.compare(&moved, "sAMAccountName", "bob").await.unwrap().equal().unwrap());
    assert_eq!(l.compare(&moved, "mail", "x").await.unwrap().0.rc, 16);

    // refusals, each with AD's code, and nothing changed
    let usn_before = one(&mut l, "", vec!["highestCommittedUSN"]).await;
    let checks: Vec<(LdapResult, u32, &str)> = vec![
        (
            l.add(&format!("CN=Dup,{ou}"), vec![("objectClass", HashSet::from(["user"])), ("sAMAccountName", HashSet::from(["ALICE"]))])
                .await
                .unwrap(),
            68,
            "00000524",
        ),
        (l.add(&format!("CN=X,OU=Missing,{base}"), vec![("objectClass", HashSet::from(["user"]))]).await.unwrap(), 32, "0000208D"),
        (
            l.add(&format!("CN=Y,{ou}"), vec![("objectClass", HashSet::from(["user"])), ("favouriteColour", HashSet::from(["blue"]))])
                .await
                .unwrap(),
            17,
            "00000057",
        ),
        (l.add(&format!("CN=Z,{ou}"), vec![("objectClass", HashSet::from(["spaceship"]))]).await.unwrap(), 65, "00002014"),
        (l.add(&format!("OU=W,{ou}"), vec![("objectClass", HashSet::from(["user"]))]).await.unwrap(), 64, "00002099"),
        (l.modify(&moved, vec![Mod::Replace("objectGUID", HashSet::from(["0123456789abcdef"]))]).await.unwrap(), 19, "000020B1"),
        (l.modify(&moved, vec![Mod::Add("sAMAccountName", HashSet::from(["second"]))]).await.unwrap(), 19, "00002082"),
        (l.modify(&moved, vec![Mod::Replace("userAccountControl", HashSet::from(["twelve"]))]).await.unwrap(), 21, "0000207D"),
        (l.modify(&moved, vec![Mod::Replace("userAccountControl", HashSet::from(["512"]))]).await.unwrap(), 53, "0000052D"),
        (l.modify(&moved, vec![Mod::Delete("mail", HashSet::new())]).await.unwrap(), 16, "00002085"),
        (l.modify(&grp, vec![Mod::Add("member", HashSet::from([moved.as_str()]))]).await.unwrap(), 20, "00002083"),
        (l.modify(&grp, vec![Mod::Add("member", HashSet::from(["CN=Ghost,DC=testlab,DC=example"]))]).await.unwrap(), 32, "0000208D"),
        (l.delete(&ou).await.unwrap(), 66, "0000208C"),
        (l.delete(&format!("CN=Users,{base}")).await.unwrap(), 66, "0000208C"),
    ];
    for (i, (r, code, win32)) in checks.iter().enumerate() {
        assert_eq!(r.rc, *code, "check {i}: {}", r.text);
        assert!(r.text.starts_with(win32), "check {i}: {}", r.text);
    }
    assert_eq!(one(&mut l, "", vec!["highestCommittedUSN"]).await.attrs, usn_before.attrs, "refused writes change nothing");

    // permissive modify turns the last two value errors into quiet successes
    let permissive = RawControl { ctype: "1.2.840.113556.1.4.1413".into(), crit: true, val: None };
    let r = l.with_controls(permissive).modify(&grp, vec![Mod::Add("member", HashSet::from([moved.as_str()]))]).await.unwrap();
    assert_eq!(r.rc, 0);

    // a non-admin may read but not write
    let mut u = t.bind(Via::Ldaps, "TESTLAB\\User1", &t.password_of("User1")).await;
    let r = u.modify(&moved, vec![Mod::Replace("description", HashSet::from(["x"]))]).await.unwrap();
    assert_eq!(r.rc, 50);
    assert!(r.text.starts_with("00002098: SecErr:"), "{}", r.text);

    // delete: the group loses the member
    l.delete(&moved).await.unwrap().success().unwrap();
    assert!(attr(&one(&mut l, &grp, vec!["member"]).await, "member").is_empty());
    assert_eq!(l.search(&moved, Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap().1.rc, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_pwd_needs_tls_and_is_never_read_back() {
    install_crypto();
    let t = TestLab::start().await;
    let dn = format!("CN=User1,OU=Lab Users,{}", t.base());
    let old = t.password_of("User1");
    let pw = |s: &str| HashSet::from([unicode_pwd(s)]);
    let upwd = b"unicodePwd".to_vec();

    let mut plain = t.admin(Via::Plain).await;
    let r = plain.modify(&dn, vec![Mod::Replace(upwd.clone(), pw("Fresh-Start-11"))]).await.unwrap();
    assert_eq!(r.rc, 53);
    assert!(r.text.starts_with("0000001F: SvcErr:"), "{}", r.text);

    // reset by the admin over StartTLS
    let mut admin = t.admin(Via::StartTls).await;
    admin.modify(&dn, vec![Mod::Replace(upwd.clone(), pw("Fresh-Start-11"))]).await.unwrap().success().unwrap();
    let mut c = t.connect(Via::Ldaps).await;
    assert_eq!(c.simple_bind("TESTLAB\\User1", &old).await.unwrap().rc, 49);
    assert_eq!(c.simple_bind("TESTLAB\\User1", "Fresh-Start-11").await.unwrap().rc, 0);

    // change by the user: delete the old value, add the new (a day later: minPwdAge)
    t.lab.clock.advance(std::time::Duration::from_secs(86_400));
    let mut user = t.bind(Via::Ldaps, "TESTLAB\\User1", "Fresh-Start-11").await;
    let r = user.modify(&dn, vec![Mod::Delete(upwd.clone(), pw("not-it")), Mod::Add(upwd.clone(), pw("Second-Wind-22"))]).await.unwrap();
    assert_eq!(r.rc, 19);
    assert!(r.text.starts_with("00000056: AtrErr:"), "{}", r.text);
    let r = user.modify(&dn, vec![Mod::Replace(upwd.clone(), pw("Second-Wind-22"))]).await.unwrap();
    assert_eq!(r.rc, 50, "a user may change but not reset: {}", r.text);
    user.modify(&dn, vec![Mod::Delete(upwd.clone(), pw("Fresh-Start-11")), Mod::Add(upwd.clone(), pw("Second-Wind-22"))])
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(c.simple_bind(&dn, "Second-Wind-22").await.unwrap().rc, 0);

    let (rs, _) = admin.search(&dn, Scope::Base, "(objectClass=*)", vec!["unicodePwd", "userPassword"]).await.unwrap().success().unwrap();
    let e = SearchEntry::construct(rs.into_iter().next().unwrap());
    assert!(e.attrs.is_empty() && e.bin_attrs.is_empty());
    let r = admin
        .with_controls(RawControl { ctype: ad_ds::session::OID_LAB_EXPORT_SECRETS.into(), crit: true, val: None })
        .search(&dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!(r.1.rc, 0, "the export control: admin over TLS only");
    let r = plain
        .with_controls(RawControl { ctype: ad_ds::session::OID_LAB_EXPORT_SECRETS.into(), crit: true, val: None })
        .search(&dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!(r.1.rc, 50, "no hashes in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_both_ways_and_controls_by_criticality() {
    install_crypto();
    let t = TestLab::start().await;
    for via in [Via::StartTls, Via::Ldaps] {
        let mut l = t.bind(via, "TESTLAB\\User1", &t.password_of("User1")).await;
        let (exop, _) = l.extended(WhoAmI).await.unwrap().success().unwrap();
        assert_eq!(exop.parse::<WhoAmIResp>().authzid, "u:TESTLAB\\User1", "{via:?}");
        // StartTLS inside TLS is refused
        let r = l.extended(ldap3::exop::Exop { name: Some("1.3.6.1.4.1.1466.20037".into()), val: None }).await.unwrap().1;
        assert_eq!(r.rc, 1, "{via:?}");
    }
    let mut l = t.admin(Via::Plain).await;
    let unknown = |crit| RawControl { ctype: "1.2.3.4.5.6.7".into(), crit, val: Some(vec![1, 2, 3]) };
    let r = l.with_controls(unknown(true)).search(&t.base(), Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap();
    assert_eq!(r.1.rc, 12);
    let r = l.with_controls(unknown(true)).modify(&t.base(), vec![Mod::Replace("description", HashSet::from(["x"]))]).await.unwrap();
    assert_eq!(r.rc, 12);
    assert!(one(&mut l, &t.base(), vec!["description"]).await.attrs.is_empty(), "refused before anything happened");
    let r = l.with_controls(unknown(false)).search(&t.base(), Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap();
    assert_eq!((r.0.len(), r.1.rc), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_anchors_and_filetime_stamps_come_from_the_lab() {
    install_crypto();
    let t = TestLab::start().await;
    let dn = format!("CN=User4,OU=Lab Users,{}", t.base());
    let mut l = t.admin(Via::Ldaps).await;
    // mS-DS-ConsistencyGuid: 16 bytes written, the same 16 bytes read back as binary
    let anchor: Vec<u8> = (0u8..16).map(|b| b.wrapping_mul(37) | 0x80).collect();
    l.modify(&dn, vec![Mod::Replace(b"mS-DS-ConsistencyGuid".to_vec(), HashSet::from([anchor.clone()]))]).await.unwrap().success().unwrap();
    let e = one(&mut l, &dn, vec!["mS-DS-ConsistencyGuid", "pwdLastSet"]).await;
    assert_eq!(e.bin_attrs["mS-DS-ConsistencyGuid"], vec![anchor]);
    // pwdLastSet is the lab clock's FILETIME at the moment the password was set
    let epoch = clock::to_filetime(clock::Clock::lab_epoch());
    assert_eq!(attr(&e, "pwdLastSet"), [epoch.to_string()]);
    t.lab.clock.advance(std::time::Duration::from_secs(86_400));
    l.modify(&dn, vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd("Next-Day-Pass-7")]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = one(&mut l, &dn, vec!["pwdLastSet"]).await;
    assert_eq!(attr(&e, "pwdLastSet"), [(epoch + 86_400 * 10_000_000).to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_own_certificate_is_served_when_given() {
    install_crypto();
    // A CA and a server certificate made by "the operator", written to files.
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.path().join("dc.pem"), dir.path().join("dc.key"));
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca_cert.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let t = TestLab::start_with(|c| c.tls_files = Some((cert_path.clone(), key_path.clone()))).await;
    assert_eq!(std::fs::read_to_string(&t.info().adds.ca_cert).unwrap(), ca_cert.pem(), "clients are told to trust the operator's CA");
    let mut l = t.bind(Via::Ldaps, "TESTLAB\\User1", &t.password_of("User1")).await;
    let (exop, _) = l.extended(WhoAmI).await.unwrap().success().unwrap();
    assert_eq!(exop.parse::<WhoAmIResp>().authzid, "u:TESTLAB\\User1");

    // a key file with no key is refused with its path
    std::fs::write(&key_path, "not a key").unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let mut cfg = labkit::LabConfig::ephemeral(cfg_dir.path().to_path_buf());
    cfg.tls_files = Some((cert_path, key_path.clone()));
    let err = labkit::Lab::start(cfg).await.err().expect("refused").to_string();
    assert!(err.contains(&key_path.display().to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_implicit_upn_binds_with_or_without_an_explicit_one() {
    install_crypto();
    let t = TestLab::start().await;
    let mut admin = t.admin(Via::Ldaps).await;
    let dn = "CN=NoUpn,OU=Lab Users,DC=testlab,DC=example";
    let attrs = vec![
        (b"objectClass".to_vec(), HashSet::from([b"user".to_vec()])),
        (b"sAMAccountName".to_vec(), HashSet::from([b"noupn".to_vec()])),
        (b"unicodePwd".to_vec(), HashSet::from([unicode_pwd("Implicit-Upn-42")])),
        (b"userAccountControl".to_vec(), HashSet::from([b"512".to_vec()])),
    ];
    admin.add(dn, attrs).await.unwrap().success().unwrap();
    let mut c = t.connect(Via::Ldaps).await;
    // sam@dnsdomain binds a user that has no userPrincipalName (MS-ADTS 5.1.1.1.1)...
    assert_eq!(c.simple_bind("noupn@testlab.example", "Implicit-Upn-42").await.unwrap().rc, 0);
    // ...and one whose UPN is something else, as Windows does (issue 31, item 17: the forms
    // are tried in turn; docs/fidelity.md), but never with another domain
    admin.modify(dn, vec![Mod::Replace("userPrincipalName", HashSet::from(["carol.n@testlab.example"]))]).await.unwrap().success().unwrap();
    let r = c.simple_bind("noupn@testlab.example", "Implicit-Upn-42").await.unwrap();
    assert_eq!(r.rc, 0, "{}", r.text);
    assert_eq!(c.simple_bind("carol.n@testlab.example", "Implicit-Upn-42").await.unwrap().rc, 0);
    assert_eq!(c.simple_bind("noupn@other.example", "Implicit-Upn-42").await.unwrap().rc, 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_groups_on_a_base_search_only() {
    install_crypto();
    let t = TestLab::start().await;
    let mut l = t.bind(Via::Plain, "Administrator@testlab.example", "Lab-Admin-Pa55!").await;
    let sid = |e: &SearchEntry, a: &str| -> Vec<String> {
        let mut v: Vec<String> =
            e.bin_attrs.get(a).into_iter().flatten().filter_map(|b| ad_ds::sid::Sid::from_bytes(b)).map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let admin = format!("CN=Administrator,CN=Users,{}", t.base());
    let e = one(&mut l, &admin, vec!["objectSid", "tokenGroups", "tokenGroupsGlobalAndUniversal"]).await;
    let domain = sid(&e, "objectSid")[0].trim_end_matches("-500").to_string();
    let rids = |v: Vec<String>| -> Vec<String> { v.into_iter().map(|s| s.replace(&domain, "D")).collect() };
    // Samba 4.17 answers the same set for its Administrator (docs/fidelity.md): nested and
    // through the primary group, Domain Users being in BUILTIN\Users
    let mut want = vec!["D-512", "D-513", "D-518", "D-519", "D-520", "S-1-5-32-544", "S-1-5-32-545"];
    want.sort();
    assert_eq!(rids(sid(&e, "tokenGroups")), want);
    // global and universal: no builtin (domain-local) groups
    assert_eq!(rids(sid(&e, "tokenGroupsGlobalAndUniversal")), vec!["D-512", "D-513", "D-518", "D-519", "D-520"]);
    // `+` does not bring it
    let plus = one(&mut l, &admin, vec!["+"]).await;
    assert!(!plus.bin_attrs.contains_key("tokenGroups"));
    // in any other scope: operationsError with Samba's text
    let r =
        l.search(&format!("CN=Users,{}", t.base()), Scope::Subtree, "(sAMAccountName=Administrator)", vec!["tokenGroups"]).await.unwrap();
    assert_eq!(r.1.rc, 1, "{:?}", r.1);
    assert!(r.1.text.contains("Cannot provide tokenGroups attribute, this is not a BASE search"), "{}", r.1.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_that_reach_other_naming_contexts_end_with_continuation_references() {
    install_crypto();
    let t = TestLab::start().await;
    let base = t.base();
    let mut l = t.bind(Via::Plain, "user1@testlab.example", &t.password_of("User1")).await;
    let built = || t.lab.adds.as_ref().unwrap().directory.read().unwrap().partitions_built();
    // the references cost no Configuration or Schema objects: those 1,769 are built only for a
    // search based in one of those NCs (every first search built them once, 10 ms of a lab's
    // start: the engine's first read)
    let r = l.search(&base, ldap3::Scope::Subtree, "(sAMAccountName=User1)", vec!["1.1"]).await.unwrap();
    assert_eq!((r.0.len(), r.1.refs.len()), (1, 3));
    assert!(!built(), "a domain search built the other naming contexts' objects");
    let refs = |scope, at: String| {
        let mut l = l.clone();
        async move {
            let r = l.search(&at, scope, "(sAMAccountName=User1)", vec!["1.1"]).await.unwrap();
            (r.0.len(), r.1.refs.clone())
        }
    };
    let dns = "testlab.example";
    let subtree = vec![
        format!("ldap://ForestDnsZones.{dns}/DC=ForestDnsZones,{base}"),
        format!("ldap://DomainDnsZones.{dns}/DC=DomainDnsZones,{base}"),
        format!("ldap://{dns}/CN=Configuration,{base}"),
    ];
    assert_eq!(refs(Scope::Subtree, base.clone()).await, (1, subtree.clone()));
    let one_level: Vec<String> = subtree.iter().map(|r| format!("{r}??base")).collect();
    assert_eq!(refs(Scope::OneLevel, base.clone()).await, (0, one_level));
    assert_eq!(refs(Scope::Base, base.clone()).await, (0, vec![]));
    assert_eq!(refs(Scope::Subtree, format!("OU=Lab Users,{base}")).await, (1, vec![]));
    // Configuration's subtree is referred to Schema, which it does not hold
    let config = format!("CN=Configuration,{base}");
    let r = l.search(&config, Scope::Subtree, "(cn=Partitions)", vec!["1.1"]).await.unwrap();
    assert_eq!((r.0.len(), r.1.refs.clone()), (1, vec![format!("ldap://{dns}/CN=Schema,{config}")]));
    // paged: the references come once, with the last page
    let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> =
        vec![Box::new(ldap3::adapters::EntriesOnly::new()), Box::new(ldap3::adapters::PagedResults::new(2))];
    let mut s = l.streaming_search_with(adapters, &base, Scope::Subtree, "(objectClass=user)", vec!["1.1"]).await.unwrap();
    let mut n = 0;
    while s.next().await.unwrap().is_some() {
        n += 1;
    }
    let done = s.finish().await;
    assert!(n > 4 && done.rc == 0, "{n} {done:?}");
    assert_eq!(done.refs, subtree);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_and_schema_naming_contexts_are_served() {
    install_crypto();
    let t = TestLab::start().await;
    let base = t.base();
    let mut l = t.bind(Via::Plain, "user1@testlab.example", &t.password_of("User1")).await;
    let root = one(&mut l, "", vec!["namingContexts", "dsServiceName"]).await;
    let ncs = attr(&root, "namingContexts");
    assert_eq!(ncs.len(), 5, "{ncs:?}");
    // every NC the rootDSE names is there, and the object dsServiceName names
    for dn in ncs.iter().chain(attr(&root, "dsServiceName").iter()) {
        let r = l.search(dn, Scope::Base, "(objectClass=*)", vec!["objectClass"]).await.unwrap().success().unwrap();
        assert_eq!(r.0.len(), 1, "{dn}");
    }
    let schema = format!("CN=Schema,CN=Configuration,{base}");
    let user = one(&mut l, &format!("CN=User,{schema}"), vec!["governsID", "lDAPDisplayName", "objectCategory", "schemaIDGUID"]).await;
    assert_eq!(attr(&user, "governsID"), vec!["1.2.840.113556.1.5.9"]);
    assert_eq!(attr(&user, "objectCategory"), vec![format!("CN=Class-Schema,{schema}")]);
    assert_eq!(user.bin_attrs["schemaIDGUID"][0].len(), 16);
    // one object per definition of Microsoft's schema (paged: more than a page's 1,000)
    let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> =
        vec![Box::new(ldap3::adapters::EntriesOnly::new()), Box::new(ldap3::adapters::PagedResults::new(1000))];
    let mut s = l
        .streaming_search_with(adapters, &schema, Scope::OneLevel, "(|(objectClass=attributeSchema)(objectClass=classSchema))", vec!["1.1"])
        .await
        .unwrap();
    let mut n = 0;
    while s.next().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, ad_ds::ad_schema::objects().len());
    // unpaged, AD stops at MaxPageSize
    let r = l.search(&schema, Scope::OneLevel, "(objectClass=*)", vec!["1.1"]).await.unwrap();
    assert_eq!((r.0.len(), r.1.rc), (1000, 4));
    // nothing is there that is not: noSuchObject with the best match
    let r = l.search(&format!("CN=Nope,{schema}"), Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap();
    assert_eq!(r.1.rc, 32);
    assert_eq!(r.1.matched, schema);
    // the DNS partitions' zone
    let zone = format!("DC=testlab.example,CN=MicrosoftDNS,DC=DomainDnsZones,{base}");
    let z = one(&mut l, &zone, vec!["objectClass"]).await;
    assert!(attr(&z, "objectClass").contains(&"dnsZone".to_string()));
}
