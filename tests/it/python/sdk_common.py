"""What the SDK scripts here share: run by tests/it/mock_families.rs and tests/it/families.rs
through the scripts that import it."""


def expect(error_class, call):
    """The exception of class `error_class` that `call()` raises; fails when it raises none."""
    try:
        call()
    except error_class as e:
        return e
    raise AssertionError(f"expected {error_class.__name__}")
