/* mint: `mjpeg-fcgi sign`, the command that prints a signed link to a
 * private stream (sign.c), for scripts and for checking an application's
 * own minting against the responder's. */
#ifndef MJPEG_MINT_H
#define MJPEG_MINT_H

/* argv[0] is "sign": sign --config FILE NAME [--ttl SECONDS] [--ip ADDR].
 * Prints the link on stdout; an error on stderr.  Returns an exit status:
 * 0, 1 (a stream without a secret, a config error) or 2 (usage). */
int mint_main(int argc, char **argv);

#endif
