#include "mint.h"

#include "clock.h"
#include "config.h"
#include "parse.h"
#include "sign.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: mjpeg-fcgi sign --config FILE NAME [--ttl SECONDS] [--ip ADDR]\n");
	return 2;
}

int mint_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ttl", required_argument, NULL, 't' },
		{ "ip", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	static struct settings settings; /* large: not on the stack */
	const struct stream_settings *st;
	const char *config = NULL, *ip = NULL;
	char link[512];
	long ttl = SIGN_TTL_DEFAULT;
	int opt;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 't':
			if (parse_long(optarg, 1, (long)SIGN_TTL_MAX, &ttl) < 0) {
				fprintf(stderr,
					"mjpeg-fcgi sign: --ttl %s: must be a whole number of "
					"seconds from 1 to %lld\n",
					optarg, (long long)SIGN_TTL_MAX);
				return 2;
			}
			break;
		case 'i':
			if (!sign_addr_valid(optarg)) {
				fprintf(stderr, "mjpeg-fcgi sign: --ip %s: not an IPv4 or IPv6 address\n",
					optarg);
				return 2;
			}
			ip = optarg;
			break;
		default:
			return usage();
		}
	}
	if (!config || optind != argc - 1)
		return usage();
	config_defaults(&settings);
	if (config_load_file(&settings, config) < 0)
		return 1;
	config_add_default_streams(&settings);
	st = config_find_stream(&settings, argv[optind]);
	if (!st) {
		fprintf(stderr, "mjpeg-fcgi sign: %s: no stream '%s'\n", config, argv[optind]);
		return 1;
	}
	if (!st->view_secret[0]) {
		fprintf(stderr, "mjpeg-fcgi sign: stream '%s' has no view_secret: it is public\n",
			st->name);
		return 1;
	}
	if (sign_mint(link, sizeof(link), st->name, st->view_secret,
		      clock_wall_usec() / USEC_PER_SEC + ttl, ip) < 0) {
		fprintf(stderr, "mjpeg-fcgi sign: HMAC-SHA256 failed\n");
		return 1;
	}
	printf("%s\n", link);
	return 0;
}
