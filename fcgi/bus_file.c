/* bus_file: the frame bus's file: the checks on the bus directory and the
 * stream file before either is trusted, the mapping, and bus_check_file.
 * What goes on in the mapped file is bus.c's. */
#include "bus_layout.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* What a file of the given mode is, for messages. */
static const char *file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "not a regular file";
}

/* Opens the bus directory, creating it 0700 when missing, and returns its
 * fd: the stream files are then opened relative to it, so what was checked
 * here is what they live in.  Only a real directory (not a symbolic link)
 * of this process's user that nobody else may write into will do: anyone
 * who can add or replace entries in it can read and forge frames.  Parent
 * directories are not checked; a sticky one such as /dev/shm or /tmp
 * lets nobody else rename or remove ours.  -1 (logged) otherwise. */
static int open_bus_dir(const char *dir)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error("bus: mkdir(%s): %s", dir, strerror(errno));
		return -1;
	}
	/* O_NOFOLLOW: a symbolic link planted at the path fails (ELOOP)
	 * rather than lead us into another user's directory. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR) {
			if (lstat(dir, &st) == 0)
				log_error("bus: %s is %s, not a directory; refusing it as the bus "
					  "directory (remove it, or set bus_dir elsewhere)",
					  dir, file_kind(st.st_mode));
			else
				log_error("bus: %s is not a directory; refusing it as the bus "
					  "directory", dir);
		} else {
			log_error("bus: open(%s): %s", dir, strerror(errno));
		}
		return -1;
	}
	if (fstat(fd, &st) < 0)
		FATAL("fstat(bus directory %s): %s", dir, strerror(errno));
	if (st.st_uid != geteuid()) {
		log_error("bus: %s is owned by uid %lu, not by this process's uid %lu; "
			  "refusing it as the bus directory: its owner could read and forge "
			  "frames (remove it, or set bus_dir elsewhere)",
			  dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
		goto fail;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_error("bus: %s has mode %04o: group or others may write into it; "
			  "refusing it as the bus directory (chmod 0700 %s)",
			  dir, (unsigned)(st.st_mode & 07777), dir);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Tries to open DIR/NAME: creating it (O_EXCL, so a file planted between
 * our look and our open is never taken as ours) or opening what is there.
 * *created is set when we made it.  -1 with errno set otherwise. */
static int open_or_create(int dir_fd, const char *name, int *created)
{
	/* Few tries: only another process of ours creating or a user
	 * removing the file at the same moment makes us go round again. */
	for (int tries = 0; tries < 8; tries++) {
		/* O_NONBLOCK: opening a FIFO planted there returns at once
		 * (it is then refused); regular files ignore the flag. */
		int fd = openat(dir_fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

		if (fd >= 0 || errno != ENOENT) {
			*created = 0;
			return fd;
		}
		fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    BUS_FILE_MODE);
		if (fd >= 0 || errno != EEXIST) {
			*created = 1;
			return fd;
		}
	}
	errno = EAGAIN;
	return -1;
}

/* Opens the stream file NAME in the bus directory: only a regular file of
 * this process's user, mode 0600, with no other name (one link) will do,
 * whoever created it.  -1 (logged) otherwise. */
static int open_bus_file(int dir_fd, const char *path, const char *name)
{
	struct stat st;
	int fd, created = 0;

	fd = open_or_create(dir_fd, name, &created);
	if (fd < 0) {
		int saved = errno;

		/* ELOOP: a symbolic link (O_NOFOLLOW); EISDIR, ENXIO: a
		 * directory, a socket; EACCES: most likely another user's. */
		if ((saved == ELOOP || saved == EISDIR || saved == ENXIO) &&
		    fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			log_error("bus: %s is %s; refusing it as a stream file (remove it)", path,
				  file_kind(st.st_mode));
		} else if (saved == EACCES && fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			   st.st_uid != geteuid()) {
			log_error("bus: %s is owned by uid %lu, not by this process's uid %lu; "
				  "refusing it as a stream file (remove it)",
				  path, (unsigned long)st.st_uid, (unsigned long)geteuid());
		} else {
			errno = saved;
			log_error("bus: open(%s): %s", path, strerror(errno));
		}
		return -1;
	}
	/* The umask may have taken bits off the mode we asked for. */
	if (created && fchmod(fd, BUS_FILE_MODE) < 0) {
		log_error("bus: fchmod(%s, 0600): %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0)
		FATAL("fstat(bus file %s): %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode)) {
		log_error("bus: %s is %s; refusing it as a stream file (remove it)", path,
			  file_kind(st.st_mode));
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		log_error("bus: %s is owned by uid %lu, not by this process's uid %lu; "
			  "refusing it as a stream file (remove it)",
			  path, (unsigned long)st.st_uid, (unsigned long)geteuid());
		goto fail;
	}
	if ((st.st_mode & 07777) != BUS_FILE_MODE) {
		log_error("bus: %s has mode %04o, not 0600; refusing it as a stream file "
			  "(remove it)", path, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_nlink != 1) {
		log_error("bus: %s has %lu links: it is also another file; refusing it as a "
			  "stream file (remove it)", path, (unsigned long)st.st_nlink);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

struct bus *bus_open(const char *dir, const char *name, size_t frame_bytes_max)
{
	struct bus *bus;
	struct stat st;
	int n, dir_fd = -1;

	bus = calloc(1, sizeof(*bus));
	if (!bus) {
		log_error("bus: calloc: %s", strerror(errno));
		return NULL;
	}
	bus->fd = -1;
	bus->viewer_slot = VIEWERS_UNCLAIMED;
	CHECK_ZERO(pthread_mutex_init(&bus->publish_lock, NULL));
	CHECK_ZERO(pthread_mutex_init(&bus->viewer_lock, NULL));
	snprintf(bus->name, sizeof(bus->name), "%s", name);
	n = snprintf(bus->path, sizeof(bus->path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(bus->path)) {
		log_error("bus: path %s/%s too long", dir, name);
		goto fail;
	}
	/* A name is one path component: stream names are [A-Za-z0-9_-]. */
	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		log_error("bus: '%s' is not a file name", name);
		goto fail;
	}
	bus->frame_bytes_max = frame_bytes_max;
	bus->slot_stride = round_up(sizeof(struct bus_slot) + frame_bytes_max, BUS_ALIGN);
	bus->map_bytes = BUS_HEADER_BYTES + BUS_SLOTS * bus->slot_stride;

	dir_fd = open_bus_dir(dir);
	if (dir_fd < 0)
		goto fail;
	/* 0600: frames may be private, and only this user's processes
	 * publish. */
	bus->fd = open_bus_file(dir_fd, bus->path, name);
	close(dir_fd);
	if (bus->fd < 0)
		goto fail;
	if (fstat(bus->fd, &st) < 0) {
		log_error("bus: fstat(%s): %s", bus->path, strerror(errno));
		goto fail;
	}
	if ((size_t)st.st_size < bus->map_bytes && ftruncate(bus->fd, (off_t)bus->map_bytes) < 0) {
		log_error("bus: ftruncate(%s, %zu): %s", bus->path, bus->map_bytes, strerror(errno));
		goto fail;
	}
	bus->map = mmap(NULL, bus->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bus->fd, 0);
	if (bus->map == MAP_FAILED) {
		bus->map = NULL;
		log_error("bus: mmap(%s): %s", bus->path, strerror(errno));
		goto fail;
	}
	bus->hdr = (struct bus_header *)bus->map;
	if (atomic_load_explicit(&bus->hdr->magic, memory_order_acquire) == BUS_MAGIC) {
		if (bus->hdr->version != BUS_VERSION) {
			log_error("bus: %s has layout version %u, this build uses %u: "
				  "stop the old responder and remove the file",
				  bus->path, bus->hdr->version, BUS_VERSION);
			goto fail;
		}
		if (bus->hdr->slot_count != BUS_SLOTS || bus->hdr->slot_bytes != frame_bytes_max) {
			log_error("bus: %s holds frames of up to %llu bytes, this process "
				  "wants %zu: every process of a stack needs the same "
				  "frame_bytes_max; stop them all or remove the file",
				  bus->path, (unsigned long long)bus->hdr->slot_bytes,
				  frame_bytes_max);
			goto fail;
		}
	}
	return bus;
fail:
	bus_close(bus);
	return NULL;
}

void bus_close(struct bus *bus)
{
	if (!bus)
		return;
	if (bus->map && bus->viewer_slot >= 0 && bus->slot_pid == getpid()) {
		struct bus_viewer_slot *slot = &bus->hdr->viewer_slots[bus->viewer_slot];
		int32_t me = (int32_t)bus->slot_pid;

		/* Free the slot for others, unless viewers still count in it. */
		if (atomic_load(&slot->viewers) == 0)
			atomic_compare_exchange_strong(&slot->pid, &me, 0);
	}
	if (bus->map)
		munmap(bus->map, bus->map_bytes);
	if (bus->fd >= 0)
		close(bus->fd);
	CHECK_ZERO(pthread_mutex_destroy(&bus->publish_lock));
	CHECK_ZERO(pthread_mutex_destroy(&bus->viewer_lock));
	free(bus);
}

const char *bus_name(const struct bus *bus)
{
	return bus->name;
}

int bus_check_file(const struct bus *bus)
{
	struct stat at_path, mapped;

	if (fstat(bus->fd, &mapped) < 0)
		FATAL("fstat(bus %s): %s", bus->path, strerror(errno));
	if (lstat(bus->path, &at_path) < 0) {
		log_error("bus: %s was removed while in use", bus->path);
		return -1;
	}
	if (at_path.st_ino != mapped.st_ino || at_path.st_dev != mapped.st_dev) {
		log_error("bus: %s was replaced while in use", bus->path);
		return -1;
	}
	if ((size_t)mapped.st_size < bus->map_bytes) {
		log_error("bus: %s was truncated to %lld bytes while in use", bus->path,
			  (long long)mapped.st_size);
		return -1;
	}
	return 0;
}

size_t bus_frame_bytes_max(const struct bus *bus)
{
	return bus->frame_bytes_max;
}
