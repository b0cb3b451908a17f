"""The served app in Debian's Chromium: pages render, in Chinese first, English on request."""


def test_the_start_page_lists_the_deployed_approval_types_in_chinese_then_english(
    new_page, screenshot
):
    """A visitor sees the product in Chinese and can switch to English."""
    page = new_page()
    page.goto("/")
    assert "智慧审批" in page.title()
    assert page.get_by_text("personal_loan").count() >= 1
    screenshot(page, "home-zh")
    page.get_by_role("link", name="English").click()
    assert "Smart Approval" in page.title()
