from task.seeding import stream_rng


def test_streams_are_reproducible_and_separated_by_purpose():
    assert stream_rng("a", 1, 2, 0).random() == stream_rng("a", 1, 2, 0).random()
    assert stream_rng("a", 1, 2, 0).random() != stream_rng("b", 1, 2, 0).random()
    assert stream_rng("a", 1, 2, 0).random() != stream_rng("a", 1, 2, 1).random()
