/* MjpegStream: a live MJPEG stream (multipart/x-mixed-replace, as
 * mjpeg-fcgi serves it) in a Vue 3 page.
 *
 *   import MjpegStream from './MjpegStream.js';
 *   <MjpegStream src="/stream/demo" :width="256" :height="256" alt="demo" />
 *
 * A private stream (signed links, see the README) takes a function instead
 * of a URL: it returns a fresh link (or a promise of one), from your
 * application, and is called for every connection, reconnects included:
 *
 *   <MjpegStream :src="() => fetch('/api/cam-link').then((r) => r.text())" />
 *
 * A link that carries `exp` (seconds since the epoch) is renewed
 * renewBeforeS seconds before it expires (the server ends the stream at
 * exp, and Chromium reports no event when a stream ends), so the picture
 * goes on without a gap.
 *
 * Browsers render multipart/x-mixed-replace only in an <img> (or as a page of
 * its own); a <video> has no decoder for it and stays blank. So this component
 * is an <img> that:
 *
 *  - sets its src to "" before it is removed: otherwise the browser keeps
 *    the stream's connection open after the element is gone, and six such
 *    connections (the HTTP/1.1 limit per server) stall the whole page;
 *  - reconnects after an `error` (server down, 404, 503 over the viewer
 *    limit) after the back-off of ../viewer.js: 0.5, 1, 2, 4 s, then every
 *    5 s (BACKOFF_MS; the `backoffMs` prop changes it), back to the start
 *    once a part arrives, with a `_=` cache buster so that the browser
 *    really asks again (mjpeg-fcgi ignores `_`);
 *  - where the browser reports each part (a `load` per part: Firefox), a
 *    stream with no part for WATCHDOG_MS (the server sends one at least
 *    every second) is dead: it reconnects, as ../viewer.js does;
 *  - closes the stream while the page is hidden and reopens it when shown.
 *
 * What it cannot see: Chromium fires `load` once per connection (not per
 * frame) and no event at all when a stream ends or is cut; the picture just
 * stops. A page that must notice that calls the exposed reconnect() (for
 * example when its own status poll sees the server come back), as
 * ../viewer.js does.
 *
 * A plain object with a render function: works with Vue's ESM browser build
 * (import map, as in index.html), the runtime-only builds and any bundler.
 * Other attributes (class, style, id) go to the <img>.
 */
import { h } from 'vue';

/* The reconnect policy of ../viewer.js, number for number (a test
 * compares the two): delays before attempts 1, 2, ...; the last repeats. */
export const BACKOFF_MS = [500, 1000, 2000, 4000, 5000];
/* No part for this long where the browser reports parts: reconnect. */
export const WATCHDOG_MS = 5000;
/* This many loads on one connection: the browser reports each part. */
export const PER_PART_LOADS = 3;

/* Renewing a signed link: at least this long after it was opened, however
 * soon it expires (a link minted with a very short life, or a clock ahead
 * of the server's, must not make a reconnect loop). */
export const RENEW_MIN_MS = 1000;

/* The URL with `_` set to something new. */
function withCacheBuster(src) {
	const url = new URL(src, document.baseURI);
	url.searchParams.set('_', Date.now().toString(36) + Math.random().toString(36).slice(2, 6));
	return url.href;
}

export default {
	name: 'MjpegStream',

	props: {
		/* a URL, or a function that returns one (or a promise of one):
		 * called for every connection, for private streams' signed links */
		src: { type: [String, Function], required: true },
		/* a link with `exp` is renewed this many seconds before it */
		renewBeforeS: { type: Number, default: 10 },
		width: { type: [Number, String], default: undefined },
		height: { type: [Number, String], default: undefined },
		alt: { type: String, default: 'live stream' },
		/* delays in ms before reconnect attempts 1, 2, ...; the last repeats */
		backoffMs: { type: Array, default: () => BACKOFF_MS },
	},

	/* `error` with { attempt, delayMs } each time the stream fails and a
	 * reconnect is scheduled. (No per-frame event: browsers do not report
	 * each part of a multipart stream.) */
	emits: ['error'],

	expose: ['reconnect'],

	created() {
		/* not reactive: the <img>'s src is managed here, not by the template */
		this.retryTimer = null;
		this.renewTimer = null;
		this.watchdog = null;
		this.connects = 0;   /* connect() calls: a late answer of src() is dropped */
		this.unmounted = false;
		this.attempt = 0;
		this.connLoads = 0;  /* load events on the current connection */
		this.lastLoad = 0;
	},

	mounted() {
		document.addEventListener('visibilitychange', this.onVisibility);
		this.watchdog = setInterval(this.checkAlive, 1000);
		if (!document.hidden)
			this.connect(false);
	},

	beforeUnmount() {
		document.removeEventListener('visibilitychange', this.onVisibility);
		clearInterval(this.watchdog);
		this.unmounted = true;
		this.cancelRetry();
		this.close();   /* before Vue removes the <img>: ends the download */
	},

	watch: {
		src() {
			this.reconnect();
		},
	},

	methods: {
		open(url) {
			const img = this.$refs.img;
			this.connLoads = 0;
			if (img)
				img.src = url;
		},

		close() {
			const img = this.$refs.img;
			clearTimeout(this.renewTimer);
			this.renewTimer = null;
			if (img && img.getAttribute('src'))
				img.src = '';
		},

		cancelRetry() {
			clearTimeout(this.retryTimer);
			this.retryTimer = null;
		},

		/* Opens the stream: src itself, or a fresh URL from the function
		 * src; with a cache buster when it reconnects.  A function that
		 * fails counts as a failed connection (the back-off applies). */
		async connect(bust) {
			const seq = ++this.connects;
			let url;
			try {
				url = typeof this.src === 'function' ? await this.src() : this.src;
			} catch (e) {
				url = null;
			}
			if (seq !== this.connects || this.unmounted || document.hidden)
				return;   /* superseded, gone or hidden meanwhile */
			if (typeof url !== 'string' || !url) {
				this.scheduleRetry();
				return;
			}
			this.open(bust ? withCacheBuster(url) : url);
			this.scheduleRenewal(url);
		},

		/* A fresh link before this one's exp, when src can give one. */
		scheduleRenewal(url) {
			const exp = Number(new URL(url, document.baseURI).searchParams.get('exp'));
			clearTimeout(this.renewTimer);
			this.renewTimer = null;
			if (typeof this.src !== 'function' || !exp)
				return;
			const delayMs = Math.max(RENEW_MIN_MS,
						 exp * 1000 - Date.now() - this.renewBeforeS * 1000);
			this.renewTimer = setTimeout(() => {
				this.renewTimer = null;
				this.reconnect();
			}, delayMs);
		},

		/* Opens a new connection now, forgetting the back-off. */
		reconnect() {
			this.cancelRetry();
			this.attempt = 0;
			/* a new src ends the old connection; "" first would queue an
			 * error event that lands on the new one */
			if (document.hidden)
				this.close();
			else
				this.connect(true);
		},

		onLoad() {
			/* a part arrived (Chromium: the first of a connection only) */
			this.attempt = 0;
			this.connLoads++;
			this.lastLoad = performance.now();
		},

		/* Only where the browser reports each part: a silent stream is a
		 * dead one. */
		checkAlive() {
			if (!this.retryTimer && !document.hidden && this.connLoads >= PER_PART_LOADS &&
			    performance.now() - this.lastLoad > WATCHDOG_MS)
				this.onError();
		},

		onError() {
			const img = this.$refs.img;
			/* setting src to "" (done on purpose) fires error too */
			if (!img || !img.getAttribute('src') || this.retryTimer)
				return;
			this.scheduleRetry();
		},

		/* The next attempt after the back-off. */
		scheduleRetry() {
			if (this.retryTimer)
				return;
			const table = this.backoffMs.length ? this.backoffMs : BACKOFF_MS;
			const delayMs = table[Math.min(this.attempt, table.length - 1)];
			this.attempt++;
			this.close();
			this.$emit('error', { attempt: this.attempt, delayMs });
			this.retryTimer = setTimeout(() => {
				this.retryTimer = null;
				if (!document.hidden)
					this.connect(true);
			}, delayMs);
		},

		onVisibility() {
			if (document.hidden) {
				this.cancelRetry();
				this.close();
			} else {
				this.reconnect();
			}
		},
	},

	render() {
		return h('img', {
			ref: 'img',
			width: this.width,
			height: this.height,
			alt: this.alt,
			onLoad: this.onLoad,
			onError: this.onError,
		});
	},
};
