/** JDK Flight Recorder events of the VMM's devices (category "Loomvisor"). */
package dev.loomvisor.vmm.jfr;
