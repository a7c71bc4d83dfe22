/** jcstress checks of the work queue and the notifier; jcstress runs them from its uber-jar, on the class path. */
module dev.loomvisor.stress {
    requires dev.loomvisor.core;
    requires dev.loomvisor.vhost;
    requires jcstress.core;
}
