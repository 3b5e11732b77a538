"""Grad mode is per thread, as in torch, and torch's own no_grad / inference_mode stop
handgrad from recording too."""

import threading

import torch

import handgrad as hg


def test_no_grad_in_one_thread_does_not_switch_recording_off_in_another():
    w = hg.randn(3, requires_grad=True)
    inside, release, results = threading.Event(), threading.Event(), {}

    def evaluator():
        with hg.no_grad():
            inside.set()
            release.wait(5)
            results["evaluator"] = (w * 2).requires_grad

    thread = threading.Thread(target=evaluator)
    thread.start()
    inside.wait(5)
    results["trainer"] = (w * 2).requires_grad  # the other thread is inside no_grad now
    (w * 2).sum().backward()
    release.set()
    thread.join()
    assert results == {"trainer": True, "evaluator": False}
    assert torch.equal(w.grad.data, torch.full((3,), 2.0))


def test_interleaved_no_grad_blocks_in_two_threads_leave_grad_mode_on():
    block = hg.no_grad()  # one object entered by both threads, as a shared decorator is
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with block:
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with block:
            b_in.set()
            a_out.wait(5)  # leave after the first thread left

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hg.is_grad_enabled()
    with block:  # the shared object still works in this thread afterwards
        assert not hg.is_grad_enabled()
    assert hg.is_grad_enabled()


def test_a_new_thread_starts_with_grad_mode_on_even_if_this_one_is_off():
    seen = []
    with hg.no_grad():
        thread = threading.Thread(target=lambda: seen.append(hg.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_torch_no_grad_and_inference_mode_stop_recording():
    w = hg.randn(3, requires_grad=True)
    with torch.no_grad():
        assert not (w * 2).requires_grad and not hg.is_grad_enabled()
    with torch.inference_mode():
        y = (w * 2).exp().sum()
        assert not y.requires_grad
    assert float(y) > 0
    assert (w * 2).requires_grad  # and afterwards it records again
    # torch's decorators work on handgrad code as they do on torch code
    evaluate = torch.no_grad()(lambda: (w * 3).requires_grad)
    assert evaluate() is False
