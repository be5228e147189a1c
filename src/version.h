#ifndef CACHETORYD_VERSION_H
#define CACHETORYD_VERSION_H

#define CACHETORYD_VERSION "0.1.0"
/* The redis version cachetoryd reports (HELLO, INFO redis_version): the command set and replies it
 * follows, so that clients enable the features it has. */
#define CACHETORYD_REDIS_VERSION "7.0.0"

#endif
