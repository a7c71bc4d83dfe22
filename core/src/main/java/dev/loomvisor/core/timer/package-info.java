/**
 * High-resolution timers for many deadlines, the kernel's hrtimer: one clock thread per
 * {@link dev.loomvisor.core.timer.HrtimerBase} keeps every armed {@link dev.loomvisor.core.timer.Hrtimer} in a
 * {@link dev.loomvisor.core.timer.TimerQueue} ordered by expiry and sleeps until the earliest one, or without
 * a timeout while none is armed. Open-loop senders pace through it instead of one timed park each.
 */
package dev.loomvisor.core.timer;
