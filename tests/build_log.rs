//! Every line a command prints lands in the build log, with the command line.

use nodeimg::logging::{self, LogFormat};
use nodeimg::sys::Cmd;

#[test]
fn command_lines_and_output_go_to_the_build_log() {
    logging::init(-2, LogFormat::Text);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("build.log");
    logging::open_build_log(&log).unwrap();
    Cmd::new("sh")
        .args(["-c", "echo to-stdout; echo to-stderr >&2"])
        .run()
        .unwrap();
    let failed = Cmd::new("sh").args(["-c", "echo broken >&2; exit 4"]).run();
    logging::close_build_log();
    Cmd::new("echo").arg("after-close").run().unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(failed.is_err());
    assert!(
        text.contains("$ sh -c 'echo to-stdout; echo to-stderr >&2'"),
        "{text}"
    );
    assert!(text.contains("sh: to-stdout"), "{text}");
    assert!(text.contains("sh: to-stderr"), "{text}");
    assert!(text.contains("sh: broken"), "{text}");
    assert!(!text.contains("after-close"), "{text}");
}
