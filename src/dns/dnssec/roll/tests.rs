use std::time::Duration;

use super::*;

/// Lifetime 100 s, publish interval 10 s, propagation 5 s.
fn timing() -> ZskTiming {
    ZskTiming {
        lifetime: Duration::from_secs(100),
        publish_interval: Duration::from_secs(10),
        propagation: Duration::from_secs(5),
    }
}

/// The zone's largest TTL in these tests.
const TTL: u64 = 20;

fn ksk() -> KeyFacts {
    KeyFacts {
        tag: 1,
        ksk: true,
        times: KeyTimes::default(),
    }
}

/// `keys` with `plan` carried out; a successor gets tag `tag`.
fn apply(keys: &[KeyFacts], plan: &Plan, tag: u16) -> Vec<KeyFacts> {
    let mut after: Vec<KeyFacts> = (keys.iter())
        .filter(|k| !plan.retire.contains(&k.tag))
        .map(|k| match plan.ending {
            Some((ending, times)) if ending == k.tag => KeyFacts { times, ..*k },
            _ => *k,
        })
        .collect();
    if let Some(times) = plan.successor {
        after.push(KeyFacts {
            tag,
            ksk: false,
            times,
        });
    }
    after
}

/// The tags of the published keys, of those signing the keys and those signing the zone.
fn roles(keys: &[KeyFacts], now: u64) -> (Vec<u16>, Vec<u16>, Vec<u16>) {
    let uses = uses(keys, now);
    let tags = |pick: fn(&KeyUse) -> bool| {
        (keys.iter().zip(&uses))
            .filter(|(_, u)| pick(u))
            .map(|(k, _)| k.tag)
            .collect()
    };
    (
        tags(|u| u.published),
        tags(|u| u.signs_keys),
        tags(|u| u.signs_zone),
    )
}

#[test]
fn without_a_lifetime_a_csk_signs_everything_and_nothing_is_planned() {
    let keys = [ksk()];
    assert_eq!(plan(&keys, None, TTL, 1000), Plan::default());
    assert_eq!(next_event(&keys, None, 1000), None);
    assert_eq!(roles(&keys, 1000), (vec![1], vec![1], vec![1]));
}

#[test]
fn a_full_roll_walks_through_its_phases_at_the_times_the_schedule_sets() {
    let timing = timing();
    let timing = Some(&timing);
    // t=1000: a CSK zone given a lifetime gets its first ZSK, pre-published.
    let plan0 = plan(&[ksk()], timing, TTL, 1000);
    assert_eq!(plan0.retire, Vec::<u16>::new());
    assert_eq!(plan0.ending, None);
    let first = plan0.successor.expect("a first ZSK");
    assert_eq!((first.publish, first.activate), (Some(1000), Some(1010)));
    let keys = apply(&[ksk()], &plan0, 2);
    assert_eq!(roles(&keys, 1000), (vec![1, 2], vec![1], vec![1]));
    assert_eq!(next_event(&keys, timing, 1000), Some(1010));
    assert_eq!(plan(&keys, timing, TTL, 1009), Plan::default());

    // t=1010: the ZSK signs; its successor is due at 1010 + 100 - 10.
    assert_eq!(roles(&keys, 1010), (vec![1, 2], vec![1], vec![2]));
    assert_eq!(next_event(&keys, timing, 1010), Some(1100));
    assert_eq!(plan(&keys, timing, TTL, 1099), Plan::default());

    // t=1100: the successor is published, to sign at the end of the lifetime (1110); the
    // old key ends then, and leaves at 1110 + TTL + propagation.
    let plan1 = plan(&keys, timing, TTL, 1100);
    let next = plan1.successor.expect("a successor");
    assert_eq!((next.publish, next.activate), (Some(1100), Some(1110)));
    let (tag, ending) = plan1.ending.expect("the old key's end");
    assert_eq!(
        (tag, ending.inactive, ending.delete),
        (2, Some(1110), Some(1135))
    );
    let keys = apply(&keys, &plan1, 3);
    assert_eq!(roles(&keys, 1100), (vec![1, 2, 3], vec![1], vec![2]));
    assert_eq!(next_event(&keys, timing, 1100), Some(1110));
    assert_eq!(plan(&keys, timing, TTL, 1105), Plan::default());

    // t=1110: the successor signs, the old key is still published.
    assert_eq!(roles(&keys, 1110), (vec![1, 2, 3], vec![1], vec![3]));
    assert_eq!(next_event(&keys, timing, 1110), Some(1135));

    // t=1135: the old key is withdrawn and retired.
    assert_eq!(roles(&keys, 1135), (vec![1, 3], vec![1], vec![3]));
    let plan2 = plan(&keys, timing, TTL, 1135);
    assert_eq!((plan2.retire, plan2.successor), (vec![2], None));
    let keys = apply(&keys, &plan(&keys, timing, TTL, 1135), 0);
    assert_eq!(next_event(&keys, timing, 1135), Some(1200));
}

#[test]
fn a_successor_made_late_is_published_a_full_interval_before_it_signs() {
    let timing = timing();
    let zsk = KeyFacts {
        tag: 2,
        ksk: false,
        times: KeyTimes::from_now(1000),
    };
    // Down from before 1090 until 1500: the successor signs at 1510, the old key until then.
    let planned = plan(&[ksk(), zsk], Some(&timing), TTL, 1500);
    let next = planned.successor.expect("a successor");
    assert_eq!((next.publish, next.activate), (Some(1500), Some(1510)));
    assert_eq!(
        planned.ending.map(|(tag, t)| (tag, t.inactive, t.delete)),
        Some((2, Some(1510), Some(1535)))
    );
}

#[test]
fn a_zsk_without_times_is_rolled_at_once_and_a_lost_successor_is_made_again() {
    let timing = timing();
    let old = KeyFacts {
        tag: 2,
        ksk: false,
        times: KeyTimes::default(),
    };
    let planned = plan(&[ksk(), old], Some(&timing), TTL, 5000);
    assert_eq!(
        planned.successor.and_then(|t| t.activate),
        Some(5010),
        "{planned:?}"
    );
    // The old key ended, its successor never written: the KSK signs, a first ZSK comes.
    let ended = KeyFacts {
        times: KeyTimes {
            inactive: Some(4000),
            delete: Some(6000),
            ..KeyTimes::default()
        },
        ..old
    };
    assert_eq!(roles(&[ksk(), ended], 5000), (vec![1, 2], vec![1], vec![1]));
    let again = plan(&[ksk(), ended], Some(&timing), TTL, 5000);
    assert_eq!(again.successor.and_then(|t| t.activate), Some(5010));
    assert_eq!(again.ending, None);
}

#[test]
fn due_deletions_happen_without_a_lifetime_and_never_to_a_ksk() {
    let gone = KeyTimes {
        delete: Some(100),
        ..KeyTimes::default()
    };
    let zsk = KeyFacts {
        tag: 2,
        ksk: false,
        times: gone,
    };
    let old_ksk = KeyFacts {
        tag: 3,
        ksk: true,
        times: gone,
    };
    let planned = plan(&[ksk(), zsk, old_ksk], None, TTL, 100);
    assert_eq!(planned.retire, vec![2]);
}
