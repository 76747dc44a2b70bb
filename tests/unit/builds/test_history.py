"""What a build definition's history keeps of a change (before and after, the Dockerfile as a
diff) and what it never keeps (a git URL's user and password)."""

from __future__ import annotations

import pytest

from dockyard.builds.history import MAX_DIFF_LINES, definition_changes, dockerfile_diff, without_userinfo


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://bob:s3cret@git.example.org/lab/tool.git", "https://git.example.org/lab/tool.git"),
        ("https://token@git.example.org:8443/x.git", "https://git.example.org:8443/x.git"),
        ("https://git.example.org/x.git", "https://git.example.org/x.git"),
        ("git@github.com:lab/tool.git", "git@github.com:lab/tool.git"),  # scp form: a user, no secret
        (None, None),
    ],
)
def test_a_git_url_never_keeps_its_user_and_password(url: str | None, kept: str | None) -> None:
    assert without_userinfo(url) == kept


def test_a_change_keeps_each_field_before_and_after_and_the_dockerfile_as_a_diff() -> None:
    before = {
        "description": "",
        "dockerfile": "FROM a\nRUN one\n",
        "git_url": "https://u:p@h/x.git",
        "build_args": "{}",
    }
    after = {
        "description": "new",
        "dockerfile": "FROM a\nRUN two\n",
        "git_url": "https://h/y.git",
        "build_args": '{"V": "1"}',
    }
    found = definition_changes(before, after, ["build_args", "description", "dockerfile", "git_url"])
    assert found["description"] == {"before": "", "after": "new"}
    assert found["git_url"] == {"before": "https://h/x.git", "after": "https://h/y.git"}
    assert found["build_args"] == {"before": {}, "after": {"V": "1"}}
    assert found["dockerfile"]["diff"].splitlines()[-2:] == ["-RUN one", "+RUN two"]


def test_a_long_dockerfile_diff_is_cut_and_says_so() -> None:
    diff = dockerfile_diff("", "".join(f"RUN step {n}\n" for n in range(1000)))
    lines = diff.splitlines()
    assert len(lines) == MAX_DIFF_LINES + 1
    assert lines[-1].endswith("more lines of difference")
