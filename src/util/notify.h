/*
 * notify: the systemd service notification protocol (sd_notify), for Type=notify units: READY=1 once
 * listening, RELOADING=1 / READY=1 around a reload, STOPPING=1 on shutdown. A datagram to the unix
 * socket named by $NOTIFY_SOCKET; nothing happens when it is not set.
 *
 * Written here rather than linking libsystemd: the protocol is one sendto() of a text line, and the
 * daemon then runs the same with or without systemd.
 */
#ifndef CACHETORYD_UTIL_NOTIFY_H
#define CACHETORYD_UTIL_NOTIFY_H

int notify_send(const char *state);     /* 1 sent, 0 no NOTIFY_SOCKET, -1 error */

#endif
