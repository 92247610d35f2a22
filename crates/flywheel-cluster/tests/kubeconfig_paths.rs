//! `KUBECONFIG=/dev/zero` (or a FIFO) made kube's own loader read forever:
//! every path it would read is checked by the bounded reader first.

use std::ffi::OsString;

use flywheel_cluster::check_kubeconfig_paths;

#[test]
fn a_device_or_fifo_in_kubeconfig_is_an_error_naming_it() {
    let err = check_kubeconfig_paths(Some(OsString::from("/dev/zero")), None)
        .expect_err("device")
        .to_string();
    assert!(
        err.contains("/dev/zero: is a character device, not a regular file; a kubeconfig must be a regular file"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tmp");
    let good = dir.path().join("config");
    std::fs::write(&good, "apiVersion: v1\nkind: Config\n").expect("write");
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    // The second entry of a KUBECONFIG list is checked too.
    let list = std::env::join_paths([&good, &fifo]).expect("join");
    let err = check_kubeconfig_paths(Some(list), None)
        .expect_err("fifo")
        .to_string();
    assert!(err.contains("is a FIFO (named pipe)"), "{err}");

    // Regular files, missing entries (kube reports those) and an empty
    // KUBECONFIG with no ~/.kube/config pass.
    let list = std::env::join_paths([good.clone(), dir.path().join("missing")]).expect("join");
    assert!(check_kubeconfig_paths(Some(list), None).is_ok());
    assert!(check_kubeconfig_paths(Some(OsString::new()), Some(dir.path().into())).is_ok());

    // Without KUBECONFIG, ~/.kube/config is the file checked.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).expect("mkdir");
    std::os::unix::fs::symlink("/dev/zero", home.join(".kube/config")).expect("symlink");
    let err = check_kubeconfig_paths(None, Some(home.into()))
        .expect_err("home device")
        .to_string();
    assert!(err.contains(".kube/config: is a character device"), "{err}");
}
