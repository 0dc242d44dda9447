//! `[dns] watch_zones = true`: edits to zone files and to the config reload edgewise-dns by
//! themselves, through the same all-or-nothing reload as SIGHUP; a broken edit changes
//! nothing until it is fixed; editors that save by renaming a new file over the old one are
//! seen too.

use std::time::Duration;

use edgewise::dns::reload::WATCH_QUIET;

use crate::dns_reload::Reloadable;
use crate::dns_routing::{eventually, route_config};

/// A config serving `route.test` from the zone file `zone` plus inline NS records, watched.
fn watched(zone: &str) -> String {
    route_config("", "workers = 1\nwatch_zones = true", &[]).replace(
        "name = \"route.test\"\n",
        &format!("name = \"route.test\"\nfile = \"{zone}\"\n"),
    )
}

/// A zone file for `route.test` whose `mail` has `address`.
fn mail_zone(address: &str) -> String {
    format!("$ORIGIN route.test.\nmail 300 IN A {address}\n")
}

/// Serves [`watched`] with `watch.zone`, where `mail` is 192.0.2.25.
async fn start() -> Reloadable {
    Reloadable::start(
        &watched("watch.zone"),
        &[("watch.zone", &mail_zone("192.0.2.25"))],
    )
    .await
}

/// Waits until `name A` answers exactly `want`.
async fn wait_for(server: &Reloadable, name: &str, want: &[&str]) {
    eventually(&format!("{name} to answer {want:?}"), || async {
        let got = server.addresses(name).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn an_edited_zone_file_and_an_edited_config_are_served_without_a_signal() {
    let server = start().await;
    assert_eq!(server.addresses("mail.route.test.").await, ["192.0.2.25"]);

    server.write("watch.zone", &mail_zone("192.0.2.26"));
    wait_for(&server, "mail.route.test.", &["192.0.2.26"]).await;

    // The config file itself is watched: a second zone, from a file in another folder.
    std::fs::create_dir(server.file("more")).expect("a second zone folder");
    server.write(
        "more/other.zone",
        "$ORIGIN other.test.\n@ 300 IN NS ns1.other.test.\nns1 300 IN A 192.0.2.53\nwww 300 IN A 192.0.2.80\n",
    );
    let two_zones = format!(
        "{}\n[[dns.zones]]\nname = \"other.test\"\nfile = \"more/other.zone\"\n",
        watched("watch.zone")
    );
    server.write("edgewise.toml", &two_zones);
    wait_for(&server, "www.other.test.", &["192.0.2.80"]).await;

    // The new zone's folder is watched from that reload on.
    server.write(
        "more/other.zone",
        "$ORIGIN other.test.\n@ 300 IN NS ns1.other.test.\nns1 300 IN A 192.0.2.53\nwww 300 IN A 192.0.2.81\n",
    );
    wait_for(&server, "www.other.test.", &["192.0.2.81"]).await;
    assert_eq!(server.addresses("mail.route.test.").await, ["192.0.2.26"]);
}

#[tokio::test]
async fn a_broken_zone_edit_keeps_the_answers_until_it_is_fixed() {
    let server = start().await;
    server.write(
        "watch.zone",
        &format!("{}bad 300 IN A not-an-address\n", mail_zone("192.0.2.26")),
    );
    // Well past the quiet time and a reload: the whole file was checked and refused, so not
    // even its valid line was applied.
    let deadline = tokio::time::Instant::now() + WATCH_QUIET * 4;
    while tokio::time::Instant::now() < deadline {
        assert_eq!(server.addresses("mail.route.test.").await, ["192.0.2.25"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.write("watch.zone", &mail_zone("192.0.2.26"));
    wait_for(&server, "mail.route.test.", &["192.0.2.26"]).await;
}

#[tokio::test]
async fn an_editor_save_that_renames_a_new_file_over_the_zone_file_is_seen_each_time() {
    let server = start().await;
    // Twice: after the first rename the file is a new inode, which a watch on the file
    // itself would have lost.
    for last in ["26", "27"] {
        let address = format!("192.0.2.{last}");
        let temp = server.file(".watch.zone.swp");
        std::fs::write(&temp, mail_zone(&address)).expect("write the editor's new copy");
        std::fs::rename(&temp, server.file("watch.zone")).expect("rename it over the zone file");
        wait_for(&server, "mail.route.test.", &[&address]).await;
    }
}
